"""Questions about the figures of a table, as an analyst asks them ("What were the total net sales in 2022?"): a
row of figures under a line of years, one line each as pypdf writes a filing's statements."""

from __future__ import annotations

import re

from ..text import DANGLING_END, MONTHS, REFERENCE, clean_query, is_plural, lower_first

# A figure in a table row as extraction writes it: 394,328 / 316,199 / (1,234) / 12.5% / 0.85, or a dash for nil.
# A cell that ends in a comma belongs to a list in prose ("Intel's 386, 486,").
_FIGURE_CELL = re.compile(r"^\(?[-−]?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?\)?$|^[—–-]$")
# A year as a column's heading: not part of a figure, nor of a span ("1997-2023") as a copyright line writes it.
_YEAR = re.compile(r"(?<![\d,.\-–])(?:19|20)\d{2}(?![\d,\-–])")
# Labels of what is not a table of figures: a contents line, a citation, a list of section numbers.
_NOT_FIGURE_LABEL = re.compile(r"\b(?:sections?|pages?|p|pp|version|chapter|vol|volume|no|table|figure|rev)\b\.?", re.I)
_MONTH_NAMES = frozenset(MONTHS | set("jan feb mar apr jun jul aug sep sept oct nov dec".split()))
# Rows of a statement that name nothing without the heading of their group ("Current:" "Federal", "State").
_SUB_ROWS = frozenset(
    """other others total totals net gross subtotal state states federal foreign domestic international local
    basic diluted current deferred consumer business""".split()
)
# Ways an analyst asks for a figure of a table row; the row's place picks one, so a table mixes them.
FIGURE_FRAMES = (
    "What {was} the {label} in {year}?",
    "What {was} the {label} for fiscal year {year}?",
    "What {is_} the FY{year} {label}?",
)


def _figure_row(line: str) -> tuple[str, int] | None:
    """A table row's label and how many figures follow it, or None for a line that is no such row: the
    label is words (not a citation, a contents line or a date) and two or more figure cells end the line.

    >>> _figure_row("Total net sales $ 394,328 $ 365,817 $ 274,515")
    ('Total net sales', 3)
    >>> _figure_row("Equity in income of affiliates 1 4 -")
    ('Equity in income of affiliates', 3)
    >>> _figure_row("Restructuring charges(2) 147 (34) 254"), _figure_row("State 42 37")
    (('Restructuring charges', 3), None)
    >>> [_figure_row(s) for s in ("Revenue grew to 12.5", "22.6. Version 4.5.0 149", "Years ended 2022 2021")]
    [None, None, None]
    """
    toks = line.split()
    cells = []
    while toks and (toks[-1] == "$" or _FIGURE_CELL.match(toks[-1])):
        tok = toks.pop()
        if tok != "$":
            cells.append(tok)
    # Footnote marks ("Restructuring charges(2)") are no part of what an analyst asks for.
    label = re.sub(r"\s*\(\d{1,2}\)", "", clean_query(" ".join(toks))).rstrip(" :$")
    label_words = label.split()
    if (
        len(cells) < 2
        # A row named by one word like "Other", "State" or "Basic" means something only under its group's heading.
        or (len(label_words) == 1 and label.lower() in _SUB_ROWS)
        # A header of years ("2022 2021 2020") names columns, not figures.
        or all(_YEAR.fullmatch(c) for c in cells)
        or not 1 <= len(label_words) <= 12
        # A statement's rows are labelled in sentence case ("Total net sales"); "proc /proc defaults" is a file's line.
        or not label[0].isupper()
        or not any(len(w) >= 3 and w.isalpha() for w in label_words)
        or sum(ch.isalpha() for ch in label) < 0.6 * len(label.replace(" ", ""))
        or label_words[-1].lower().strip(".,") in _MONTH_NAMES
        or REFERENCE.search(label)
        or _NOT_FIGURE_LABEL.search(label)
        or DANGLING_END.search(label)
        or ". " in label
    ):
        return None
    return label, len(cells)


def _header_words(line: str) -> int:
    """The words of a line other than years, dates and months: a header of years has few ("Fiscal Years Ended")."""
    return sum(1 for t in line.split() if t.strip(",.").isalpha() and t.strip(",.").lower() not in _MONTH_NAMES)


def table_figures(text: str, years: tuple[str, ...] = ()) -> tuple[list[tuple[str, tuple[str, ...]]], tuple[str, ...]]:
    """The rows of the tables of figures in `text`, one line each as extraction writes them, each with
    the years of its columns, and the years of the last header (for a table that goes on in the
    next chunk; none where the text holds no table). A header is the nearest line above the row that
    names two or more years, in a few words and not as a sentence; `years` is the one a table continued
    from earlier text has. A row counts only under a header of one year per figure: a table without
    years (a memory listing, a configuration file) asks nothing an analyst would.

    >>> table_figures("Years ended 2022 2021\\nTotal net sales $ 394,328 $ 365,817")
    ([('Total net sales', ('2022', '2021'))], ('2022', '2021'))
    >>> table_figures("Fiscal Years Ended January 28, 2023 January 29, 2022\\nRevenue $ 46,298 $ 51,761")[0]
    [('Revenue', ('2023', '2022'))]
    >>> table_figures("Mem 512 128\\nSwap 64 0")
    ([], ())
    >>> table_figures("Net income 99,803 94,680", ("2022", "2021"))[0]
    [('Net income', ('2022', '2021'))]
    >>> table_figures("Prose, and no table.", ("2022", "2021"))
    ([], ())
    >>> table_figures("Copyright 1997-2023 Debian\\nSwap 64 0")[0], table_figures("July 1, 2023 July 2, 2022 2023 2022\\nSales 1 2 3 4")[0]
    ([], [])
    >>> table_figures("Years ended 2022 2021\\nRevenue 1,001 998\\nThe table above shows our revenue by year.\\nSwap 64 0")[0]
    [('Revenue', ('2022', '2021'))]
    """
    rows: list[tuple[str, tuple[str, ...]]] = []
    headed = False
    for line in text.split("\n"):
        found = _YEAR.findall(line)
        row = _figure_row(line)
        if row is None:
            ended = line.rstrip().endswith((".", "?", "!"))
            # A header names each year once: "2023 2022 2023 2022" (three months, six months) is two tables' columns.
            if len(set(found)) == len(found) >= 2 and _header_words(line) <= 8 and not ended:
                years, headed = tuple(found), True
            elif ended and len(line.split()) >= 6:
                # A sentence ends the table above it.
                years, headed = (), False
            continue
        label, n_cells = row
        if len(years) == n_cells:
            rows.append((label, years))
    # A header goes on only with a table: text that neither heads nor holds one ends it.
    return rows, years if headed or rows else ()


def figure_question(label: str, years: tuple[str, ...], turn: int) -> str:
    """What an analyst asks of a table row: its figure for one of its years, in one of the frames;
    `turn` (the row's place) picks both, so a table asks for each year in each frame.

    >>> figure_question("Total net sales", ("2022", "2021"), 0), figure_question("Net income", ("2022", "2021"), 5)
    ('What were the total net sales in 2022?', 'What is the FY2021 net income?')
    >>> figure_question("Cost of sales", ("2022",), 1)
    'What was the cost of sales for fiscal year 2022?'
    >>> figure_question("Las Vegas Strip Resorts", ("2022",), 0)
    'What were the Las Vegas Strip Resorts in 2022?'
    """
    if not years:
        raise ValueError(f"a figure question needs the years of its row's columns: {label!r} has none")
    label_words = label.split()
    # Sentence case ("Total net sales") reads lowercased in a question; a name ("Las Vegas Strip Resorts") does not.
    if len(label_words) == 1 or not label_words[1][:1].isupper():
        label = lower_first(label)
    # The head of "cost of sales" is "cost".
    head = label.lower().split(" of ")[0].split()[-1]
    plural = is_plural(head)
    frame = FIGURE_FRAMES[(turn // len(years)) % len(FIGURE_FRAMES)]
    return frame.format(
        label=label, year=years[turn % len(years)], was="were" if plural else "was", is_="are" if plural else "is"
    )
