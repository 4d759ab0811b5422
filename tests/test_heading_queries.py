"""bench/heading_queries.py: section headings as queries for their sections, with the headings taken out of the
text every retriever searches."""

from __future__ import annotations

from bench.heading_queries import MIN_WORDS, heading_title, sections

BODY = " ".join(f"word{i}" for i in range(MIN_WORDS))


def test_headings_are_numbered_titles_not_lists_dates_or_contents_lines() -> None:
    assert heading_title("4.2. Configuring the network") == "Configuring the network"
    assert heading_title("3 Package priorities") == "Package priorities"
    for line in (
        "1. Run apt update.",
        "5.6 Fields . . . . . 39",
        "2.1 Networking 17",
        "2 cups of flour",
        "12 Oct 2020",
    ):
        assert heading_title(line) is None, line


def test_each_heading_asks_for_its_own_section_and_leaves_the_searched_text() -> None:
    pages = [
        {"source": "a.pdf", "page": 1, "text": "Contents\n1.1 Keys and signatures . . . . 4\n1.2 Mirrors . . . . 5"},
        {
            "source": "a.pdf",
            "page": 4,
            "text": f"1.1 Keys and signatures\n{BODY} keys\n1.2 Archive mirrors\nshort text\n1.3 Release files\n{BODY} release",
        },
        {"source": "b.pdf", "page": 2, "text": f"9 Release files\n{BODY} again"},
    ]
    found, stripped = sections(pages)
    # The short section asks nothing; "Release files" twice asks nothing specific.
    assert found == [("Keys and signatures", f"{BODY} keys")]
    searched = "\n".join(p["text"] for p in stripped)
    for gone in ("Keys and signatures", "Archive mirrors", "Release files", ". . ."):
        assert gone not in searched
    assert f"{BODY} keys" in searched and "short text" in searched
    assert [(p["source"], p["page"]) for p in stripped] == [(p["source"], p["page"]) for p in pages]
