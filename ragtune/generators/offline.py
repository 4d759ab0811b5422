"""The default question generator: chunk-specific questions from the chunk's own content,
with no LLM and no network (term, sentence, table-figure and inverse-cloze questions)."""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from typing import TYPE_CHECKING

from ..records import Chunk, Pair, SkipCounter
from ..text import (
    DANGLING_END,
    REFERENCE,
    STOPWORDS,
    clean_query,
    is_plural,
    is_table_row,
    lower_first,
    normalise,
    sentences,
    words,
)
from .figures import figure_question, table_figures

if TYPE_CHECKING:
    from .llm import LLMStats

# Verbs that open the imperative sentences common in guidance and standards
# ("Establish procedures for …"); such a sentence reads naturally as "How should …?".
IMPERATIVE_VERBS = frozenset(
    """adopt align analyze apply assess audit avoid build check collect compare conduct configure consider create
    define delete deploy design determine develop document employ enable engage ensure establish estimate evaluate
    examine explain follow identify implement include inform integrate investigate keep leverage limit log maintain
    manage map measure minimize monitor notify obtain perform plan prepare prevent prioritize protect provide publish
    record reduce refine remove report require restrict retain review revise run secure select share specify store
    support test track train update use validate verify""".split()
)


# Words that cannot end a noun phrase (the head of a term is a noun): common verbs,
# adjectives and determiners that keyphrase spans otherwise end on ("impacts due",
# "every suggested action" -> "every suggested").
NON_HEADS = frozenset(
    """able about according across additional available based certain common current due every different
    due early effective entire existing following general given good high important key large least less
    likely low main many much necessary need needs new non numerous other overall particular possible potential
    present previous prior public recent related relevant responsible several significant similar small
    specific such suggested various whole wide likely known made make makes making take takes taken finds
    find found said says say include includes included involve involves involved help helps provide provides
    become becomes became set sets seen show shows shown inside outside within among upon toward towards
    whether either neither across following various currently performs unique cannot actual broader""".split()
)
# A phrase whose occurrences share one neighbouring word this often is part of a longer term.
FRAGMENT_SHARE = 0.7
# The longest question the generator writes, in words (a cloze question is cut there).
MAX_QUERY_WORDS = 32
_ADJECTIVE_END = re.compile(r"(?:[^e]ed|ous|ful|able|ible|less|ical|ing|ive|ly|worthy)$")
# Nouns with those endings.
_NOUNS_LIKE_ADJECTIVES = frozenset(
    """supply family assembly anomaly reply italy july rally ally objective initiative archive directive
    detective representative alternative executive incentive perspective collective motive native
    relative derivative speed need seed feed bed red thing string ring king spring something anything
    everything nothing meeting building training testing learning marketing accounting engineering
    funding hearing briefing setting finding warning rating ranking reporting monitoring auditing
    labeling labelling watermarking red-teaming computing processing tracking logging timing pricing
    offering earnings""".split()
)
# Prepositions and verbs that open no term ("across various stages", "assist malicious actors").
_NOT_FIRST = frozenset(
    """across following currently assist allow allows enable enables help helps lead leads
make makes cause causes""".split()
)
# Verbs of IMPERATIVE_VERBS that are nouns inside a term ("periodic review", "test plan").
_VERB_NOUNS = frozenset(
    """audit check design document log map plan record report review share store support test
track train update use""".split()
)
# Link and file-name debris that PDF text leaves behind; never part of a question.
_DEBRIS = frozenset("com www http https org gov pdf html htm doi url net edu".split())
# Section labels such as "MEASURE 2.3:" or "GOVERN 1.6:" that open a line of a framework document.
_SECTION_LABEL = re.compile(r"^(?:[A-Z]{2,}\s+)?\d+(?:\.\d+)*\s*[:.]\s+|^[A-Z]{3,}\s+\d+(?:\.\d+)*\s*[:.]?\s+")

_ASIDE = re.compile(r",? such as |,? including |,? e\.g\.|,? i\.e\.| \(|: |; | [–—] |, which |, while ")
_CONNECTIVE = re.compile(
    r"^(?:Furthermore|Moreover|Additionally|However|Also|In addition|For example|For instance|"
    r"Similarly|Likewise|Therefore|Thus|Finally|In particular|Instead),\s+",
    re.I,
)
_PASSIVE = re.compile(r"^(?:\w+ed|able|being|also|not|often|used|known|made|done|taken|given|seen)\b")
_PRONOUNS = frozenset("i we you he she it they this these that those there here one such".split())
_MODAL = re.compile(r"\s(?:can|may|might|could|will|would|must|is|are|was|were)\s")


_VERB_MARKERS = frozenset("to can may might could should must will would cannot".split())
_DETERMINERS = frozenset("the a an this these that those its their our your his her each every any some no".split())
# Words that point outside the question ("these labels", "the tables below"): it cannot stand alone.
_CONTEXT_WORDS = re.compile(r"\b(?:this|these|those|below|above|aforementioned|former|latter)\b", re.I)
_NOT_SUBJECT_STARTS = frozenset(
    """not no none each every all any some when if while although because as since where
how what why whether once unless until after before""".split()
)


def _standalone_subject(subject: str) -> bool:
    """A subject a question can stand on: no pronoun, "this"/"these", negation or clause in it.

    >>> [_standalone_subject(s) for s in ("Confabulation", "These risks", "Not every task", "Bias exists and")]
    [True, False, False, False]
    """
    toks = subject.lower().split()
    return (
        toks[0].strip('"“(') not in _PRONOUNS | _NOT_SUBJECT_STARTS
        and not (toks[0].endswith("ly") and toks[0] not in _NOUNS_LIKE_ADJECTIVES)
        and toks[-1] not in {"and", "or", "but", "then"}
        and not re.search(r" (?:that|which|who|where|when|if|because|exists?|has|have|had|is|are)\b|[:;,]", subject)
    )


def _clean_lines(text: str) -> str:
    """`clean_query` line by line, keeping the line breaks: a phrase never runs from a
    table cell or heading into the next line ("Capabilities" + "Establish minimum …")."""
    return "\n".join(clean_query(line) for line in text.split("\n"))


def _phrase_spans(text: str, max_len: int = 3) -> list[tuple[str, str | None, str | None]]:
    """Candidate key phrases, each with the words just before and after it in its clause (None at an end).

    >>> _phrase_spans("Use of data provenance.", 2)[-1]
    ('data provenance', 'of', None)
    """
    out = []
    for clause in re.split(r"[.,;:()\[\]!?\n•“”\"]+", text):
        tokens = words(clause)
        for n in range(1, max_len + 1):
            for i in range(len(tokens) - n + 1):
                span = tokens[i : i + n]
                if any(w in STOPWORDS or len(w) < 3 or not w[0].isalpha() for w in span):
                    continue
                out.append(
                    (" ".join(span), tokens[i - 1] if i else None, tokens[i + n] if i + n < len(tokens) else None)
                )
    return out


def _phrases(text: str, max_len: int = 3) -> list[str]:
    """Candidate key phrases: runs of 1..max_len words with no stopword, within one clause.

    >>> _phrases("Data provenance, for models.", 2)
    ['data', 'provenance', 'data provenance', 'models']
    """
    return [span for span, _, _ in _phrase_spans(text, max_len)]


class OfflineGenerator:
    """Chunk-specific questions from the chunk's own content, no LLM needed.

    Four kinds, mixed per chunk:
    - "keyphrase": the chunk's most distinctive phrases (TF-IDF against the whole
      corpus) in natural question frames;
    - "sentence": a salient sentence turned into a question ("Establish X" ->
      "How should organizations establish X?", "X is Y" -> "What is X?");
    - "figure": a row of a table of figures asked for as an analyst would
      ("What were the total net sales in 2022?"), only where the chunk has such a table;
    - "cloze": a salient sentence used as the query itself (inverse cloze task).
    """

    name = "offline"

    # Question shapes people (and LLM question writers) use across domains; the
    # phrase makes each question specific to its chunk.
    KEYPHRASE_FRAMES = (
        "What {is_} {p}?",
        "What are the implications of {p}?",
        "What is the significance of {p}?",
        "What risks are associated with {p}?",
        "What measures can be taken to address {p}?",
        "How {does} {p} relate to {q}?",
        "What role {does} {p} play in {q}?",
    )

    def __init__(
        self,
        questions_per_chunk: int = 4,
        max_query_words: int = MAX_QUERY_WORDS,
        vocabulary: frozenset[str] | set[str] | None = None,
    ) -> None:
        self.questions_per_chunk = questions_per_chunk
        self.max_query_words = max_query_words
        self.dropped = SkipCounter()
        self.stats: LLMStats | None = None
        # Known English words (e.g. the base model's whole-word tokens): a word outside
        # them must recur in the corpus to count, so "nited" from a broken "United" never
        # becomes a term.
        self.vocabulary = vocabulary
        self._corpus_counts: Counter[str] = Counter()
        # How often each word follows a determiner ("the", "a", "their" …), as nouns do, and
        # "to" or a modal ("can", "should" …), as verbs do.
        self._after_determiner: Counter[str] = Counter()
        self._after_verb_marker: Counter[str] = Counter()
        self._sentence_counts: Counter[str] = Counter()
        # The words just before and after each candidate phrase, over all its corpus occurrences.
        self._before: dict[str, Counter[str | None]] = {}
        self._after: dict[str, Counter[str | None]] = {}

    def is_noun_phrase(self, phrase: str) -> bool:
        """A key phrase must look like a term: whole words, not opening on a verb, ending on a noun.

        >>> g = OfflineGenerator()
        >>> [g.is_noun_phrase(p) for p in ("data provenance", "impacts due", "evaluate novel methods", "com graphics")]
        [True, False, False, False]
        """
        toks = phrase.split()
        head, first = toks[-1], toks[0]
        if (
            any(w in _DEBRIS for w in toks)
            or head in NON_HEADS
            or first in _NOT_FIRST
            or any(w in IMPERATIVE_VERBS and w not in _VERB_NOUNS for w in toks)
            or first in IMPERATIVE_VERBS
        ):
            return False
        # Adverbs open or end no term ("easily access", "genuinely"), participles and adjectives
        # end none ("damaged", "highly contextual"); "speed", "approval" and "objective" are nouns.
        if (first.endswith("ly") and first not in _NOUNS_LIKE_ADJECTIVES) or (
            _ADJECTIVE_END.search(head) and head not in _NOUNS_LIKE_ADJECTIVES
        ):
            return False
        # A word the corpus uses as a verb more than as a noun ("surpass", "exacerbate",
        # "acknowledges": its stem follows "to" or "can") makes the span a clause, not a term.
        if any(w not in _VERB_NOUNS and self._verb_like(w) for w in toks):
            return False
        if self.vocabulary is not None:
            return all(w in self.vocabulary or self._corpus_counts[w] >= 3 for w in toks)
        return True

    def is_fragment(self, phrase: str) -> bool:
        """Whether the corpus nearly always writes `phrase` inside one longer term: the same content
        word before it ("[personally] identifiable information", "[AI] actor tasks"), the same
        content word or "of" after it ("national institute [of]"), or a content word after it every
        time. A question about the fragment names no term of the text.

        >>> g = OfflineGenerator()
        >>> _ = g._idf([Chunk(str(i), "f", (1,), t, 9) for i, t in enumerate(
        ...     ["AI actor tasks: data provenance.", "AI actor tasks and provenance.", "Our data provenance."])])
        >>> [g.is_fragment(p) for p in ("actor tasks", "ai actor tasks", "data provenance", "provenance")]
        [True, False, False, False]
        """
        before, after = self._before.get(phrase), self._after.get(phrase)
        if not before or not after:
            return False
        # Always followed by another content word, it only ever modifies one ("structural [barriers]").
        if all(w is not None and w not in STOPWORDS for w in after):
            return True
        n = before.total()
        if n < 2:
            return False
        for side, binding in ((before, ()), (after, ("of",))):
            count = max(
                (k for w, k in side.items() if w is not None and (w not in STOPWORDS or w in binding)), default=0
            )
            if count >= FRAGMENT_SHARE * n:
                return True
        return False

    def article(self, phrase: str) -> str:
        """ "a ", "an " or "the " when the corpus mostly writes a singular `phrase` after that
        article ("a GAI model", "the workforce"), else "": "What is a GAI model?" reads as English,
        "What is GAI model?" does not."""
        before = self._before.get(phrase)
        if not before or before.total() < 2 or is_plural(phrase.split()[-1]):
            return ""
        word, count = max(((w, before[w]) for w in ("a", "an", "the")), key=lambda wk: wk[1])
        return f"{word} " if count >= 0.5 * before.total() else ""

    def _verb_like(self, word: str) -> bool:
        stems = {word} | ({word[:-1], word[:-2]} if word.endswith("s") else set())
        as_verb = sum(self._after_verb_marker[s] for s in stems)
        return as_verb > 0 and as_verb >= self._after_determiner[word]

    def _idf(self, chunks: list[Chunk]) -> dict[str, float]:
        df: Counter[str] = Counter()
        self._corpus_counts = Counter()
        self._after_determiner = Counter()
        self._after_verb_marker = Counter()
        self._before, self._after = {}, {}
        # Per chunk text, its candidate phrases and how often it says each, for `_keyphrases`.
        self._tf: dict[str, Counter[str]] = {}
        for c in chunks:
            spans = _phrase_spans(_clean_lines(c.text))
            self._tf[c.text] = Counter(span for span, _, _ in spans)
            df.update(self._tf[c.text].keys())
            for span, before, after in spans:
                self._before.setdefault(span, Counter())[before] += 1
                self._after.setdefault(span, Counter())[after] += 1
            ws = words(c.text)
            self._corpus_counts.update(ws)
            self._after_determiner.update(w for prev, w in zip(ws, ws[1:]) if prev in _DETERMINERS)
            self._after_verb_marker.update(w for prev, w in zip(ws, ws[1:]) if prev in _VERB_MARKERS)
        n = len(chunks)
        # A phrase seen in at least two chunks has idf below this: it is a term of the corpus.
        self._max_idf = math.log((1 + n) / 3) + 1.0 + 1e-9
        return {p: math.log((1 + n) / (1 + d)) + 1.0 for p, d in df.items()}

    def _keyphrases(self, chunk: Chunk, idf: dict[str, float], df_min_idf: float, k: int) -> list[str]:
        """The chunk's most distinctive terms.

        A candidate must look like a term: a phrase repeated in the chunk or used
        in other chunks too (not a one-off word sequence), and a single word must
        be long, rare and repeated in the chunk. Longer phrases are more specific,
        so they weigh more.
        """
        tf = self._tf.get(chunk.text) or Counter(_phrases(_clean_lines(chunk.text)))

        def termlike(p: str) -> bool:
            if not self.is_noun_phrase(p):
                return False
            if " " not in p:
                # A lone word must be used as a noun somewhere ("the pipeline"), unlike "though" or "discover",
                # and be what the chunk is about: said once, "structure" or "occurrence" asks nothing.
                term = len(p) >= 6 and idf.get(p, 0.0) >= df_min_idf and self._after_determiner[p] > 0 and tf[p] >= 2
            else:
                term = tf[p] >= 2 or idf.get(p, 99.0) < self._max_idf
            # The corpus-wide test last: it is the slow one.
            return term and not self.is_fragment(p)

        scored = sorted(
            (p for p in tf if termlike(p)),
            key=lambda p: -(1 + math.log(tf[p])) * idf.get(p, 1.0) * (1 + 0.5 * p.count(" ")),
        )
        chosen: list[str] = []
        for p in scored:
            # Skip a phrase that only repeats part of one already chosen.
            if any(p in c or c in p for c in chosen):
                continue
            chosen.append(p)
            if len(chosen) == k:
                break
        return chosen

    def _salient_sentences(self, chunk: Chunk, idf: dict[str, float]) -> list[str]:
        def score(s: str) -> float:
            toks = [w for w in words(s) if w not in STOPWORDS]
            return sum(idf.get(w, 1.0) for w in toks) / math.sqrt(len(toks) + 1)

        usable = [
            self.main_clause(_SECTION_LABEL.sub("", clean_query(s)))
            for s in sentences(chunk.text)
            if not REFERENCE.search(s) and self._sentence_counts[s] < 3 and not is_table_row(s)
        ]
        usable = [s for s in usable if 6 <= len(s.split()) <= 60 and sum(c.isalpha() for c in s) > 0.7 * len(s)]
        return sorted(usable, key=score, reverse=True)

    @staticmethod
    def main_clause(sentence: str, min_words: int = 6, long: int = 20) -> str:
        """The sentence without a leading connective and up to its first aside (a
        list, an example, a parenthesis), or for a long sentence its first comma,
        when that leaves enough words to stand alone: people ask short questions.

        >>> OfflineGenerator.main_clause("Furthermore, establish incident response plans for GAI systems, such as audits.")
        'establish incident response plans for GAI systems'
        >>> OfflineGenerator.main_clause("Log events (e.g., logins).")
        'Log events (e.g., logins).'
        """
        sentence = _CONNECTIVE.sub("", sentence)
        cut = _ASIDE.search(sentence)
        if cut and len(sentence[: cut.start()].split()) >= min_words:
            sentence = sentence[: cut.start()].rstrip(" ,;:")
        if len(sentence.split()) > long:
            for m in re.finditer(r", ", sentence):
                if len(sentence[: m.start()].split()) >= min_words:
                    return sentence[: m.start()]
        return sentence

    def _clip(self, text: str) -> str:
        toks = text.split()
        return " ".join(toks[: self.max_query_words])

    def _as_question(self, sentence: str) -> str | None:
        s = sentence.rstrip(" .;:")
        # A sentence cut before its list ("… such as", "(e.g", "the following") asks nothing whole.
        if DANGLING_END.search(s) or s.count("(") != s.count(")") or _CONTEXT_WORDS.search(s):
            return None
        toks = s.split()
        first = toks[0].lower().strip('"“(')
        # "Test datasets … can contain errors" opens on a noun that looks like a verb: an
        # imperative has no modal of its own.
        if first in IMPERATIVE_VERBS and not _MODAL.search(s):
            return self._clip("How should organizations " + first + " " + " ".join(toks[1:])) + "?"
        m = re.match(r"^(.{3,80}?)\s+(is|are|refers to|means|describes)\s+(.+)$", s)
        # "X are encouraged to …" is passive, not a definition of X.
        if m and _PASSIVE.match(m.group(3)):
            m = None
        if m and len(m.group(1).split()) <= 8 and _standalone_subject(m.group(1)):
            subject = lower_first(m.group(1))
            verb = "are" if m.group(2) == "are" else "is"
            return f"What {verb} {subject}?"
        m = re.match(r"^(.{3,80}?)\s+(can|may|could|should|must|will)\s+(.+)$", s)
        if (
            m
            and len(m.group(1).split()) <= 10
            and len(toks) <= self.max_query_words
            and _standalone_subject(m.group(1))
        ):
            # Keep the first clause of the predicate: "be incorrect, or they may …" -> "be incorrect".
            rest = re.split(r",\s+(?:or|and|but|which|while|as)\s+|;\s+", m.group(3))[0]
            if len(rest.split()) >= 2:
                return self._clip(f"How {m.group(2)} {lower_first(m.group(1))} {rest}") + "?"
        return None

    def generate(self, chunks: list[Chunk], rng: random.Random) -> list[Pair]:
        idf = self._idf(chunks)
        # A sentence found in three or more chunks is boilerplate (a running header, a
        # disclaimer): no question about it has one answer.
        self._sentence_counts = Counter(s for c in chunks for s in set(sentences(c.text)))
        # Single words must be rarer than the median word to count as terms.
        word_idfs = sorted(v for p, v in idf.items() if " " not in p)
        min_idf = word_idfs[len(word_idfs) // 2] if word_idfs else 0.0
        pairs: list[Pair] = []
        # Questions already asked of an earlier chunk: a common term would otherwise get the
        # same question in several chunks, and the duplicate filter would throw them away.
        asked: set[str] = set()
        # The header of years a table carries into the next chunk, and the rows asked so far (each frame and year
        # gets its turn over a whole table, not only within a chunk).
        source, header, turn = "", (), 0
        for c in chunks:
            made: list[tuple[str, str]] = []
            salient = self._salient_sentences(c, idf)
            # Make enough candidates of each kind for questions_per_chunk; a short
            # chunk simply yields fewer.
            want = self.questions_per_chunk
            for s in salient[:want]:
                q = self._as_question(s)
                if q:
                    made.append((q, "sentence"))
            rows, header = table_figures(c.text, header if c.source == source else ())
            source = c.source
            figures = dict.fromkeys(figure_question(label, years, turn + i) for i, (label, years) in enumerate(rows))
            turn += len(rows)
            made.extend((q, "figure") for q in list(figures)[:want] if normalise(q) not in asked)
            phrases = self._keyphrases(c, idf, min_idf, want + 1)
            frames = list(self.KEYPHRASE_FRAMES)
            rng.shuffle(frames)
            written = {p: self.article(p) + _as_written(p, c.text) for p in phrases}
            chunk_sentences = [" ".join(words(s)) for s in sentences(c.text)]
            for i, key in enumerate(phrases[:want]):
                p = written[key]
                # A second term for "How does X relate to Y?": one the chunk names in the same sentence.
                q = next(
                    (
                        written[o]
                        for o in phrases[i + 1 :] + phrases[:i]
                        if any(f" {key} " in f" {s} " and f" {o} " in f" {s} " for s in chunk_sentences)
                    ),
                    None,
                )
                plural = is_plural(key.split()[-1])
                # The frame this phrase's turn falls on, or the next one not yet asked.
                for j in range(len(frames)):
                    frame = frames[(i + j) % len(frames)]
                    if "{q}" in frame and q is None:
                        continue
                    question = frame.format(p=p, q=q, is_="are" if plural else "is", does="do" if plural else "does")
                    if normalise(question) not in asked:
                        made.append((question, "keyphrase"))
                        break
            for s in salient[:want]:
                made.append((self._clip(s), "cloze"))
            # Interleave kinds so that a small questions_per_chunk still mixes them.
            by_kind: dict[str, list[str]] = {}
            for q, kind in made:
                by_kind.setdefault(kind, []).append(q)
            order = []
            while any(by_kind.values()) and len(order) < self.questions_per_chunk:
                for kind in ("sentence", "figure", "keyphrase", "cloze"):
                    if by_kind.get(kind) and len(order) < self.questions_per_chunk:
                        order.append((by_kind[kind].pop(0), kind))
            pairs.extend(Pair(q, c.id, self.name, kind) for q, kind in order)
            asked.update(normalise(q) for q, _ in order)
        return pairs


def _as_written(phrase: str, text: str) -> str:
    """A lowercased key phrase with its acronyms cased as the text writes them.

    >>> _as_written("gai systems", "Risks of GAI Systems differ."), _as_written("data provenance", "Data provenance")
    ('GAI systems', 'data provenance')
    """
    pattern = r"(?<![\w-])" + r"\s+".join(re.escape(w) for w in phrase.split()) + r"(?![\w-])"
    m = re.search(pattern, text.replace("’", "'"), re.I)
    if not m:
        return phrase
    # Only acronyms and mixed case ("GAI", "LLMs") keep their capitals; a capital that opens a sentence does not.
    return " ".join(w if any(ch.isupper() for ch in w[1:]) else w.lower() for w in m.group().split())
