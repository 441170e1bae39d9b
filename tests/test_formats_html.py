"""Web pages through trafilatura: the main text with its title and headings; navigation,
comments, cookie banners and footers dropped; the pages the hand-written reader lost text on
(unclosed <embed>, unclosed <head>, a <form>-wrapped ASP.NET page) keep all their text."""

from __future__ import annotations

import pytest

from qa import document
from qa.errors import InputError

MB = 1024 * 1024

BODY = [f"Paragraph {i} of the garden report says something about soil, rain and the compost heap."
        for i in range(1, 5)]


def texts(doc):
    return [p.text for p in doc.paragraphs]


def test_saved_blog_page_keeps_main_text_and_drops_boilerplate():
    page = f"""<!doctype html><html><head><title>Garden report | Example Science Blog</title>
    <script>var tracking = 1;</script></head><body>
    <header><nav><a href="/">Home</a> <a href="/about">About</a> <a href="/contact">Contact</a></nav></header>
    <main><article><h1>Garden report</h1>{''.join(f'<p>{t}</p>' for t in BODY[:2])}
    <h2>Results</h2>{''.join(f'<p>{t}</p>' for t in BODY[2:])}
    <table><tr><th>Bed</th><th>Crop</th></tr><tr><td>North bed</td><td>Tomatoes and beans</td></tr></table>
    <ul><li>Mulch the north bed before winter.</li><li>Rotate the beans next year.</li></ul></article></main>
    <div class="cookie-banner" id="cookie-consent">We use cookies to improve your experience. Accept all cookies.</div>
    <section id="comments"><h3>3 Comments</h3><p>Great post! Loved it. -- Bob</p></section>
    <footer><p>© 2024 Example Science Blog. All rights reserved.</p></footer></body></html>"""
    doc = document.load(page.encode(), "report.html", MB)
    assert doc.format == "html" and doc.title == "Garden report"
    assert [(p.section, p.text) for p in doc.paragraphs] == [
        ("", BODY[0]), ("", BODY[1]), ("Results", BODY[2]), ("Results", BODY[3]),
        ("Results", "Bed: North bed; Crop: Tomatoes and beans"),
        ("Results", "Mulch the north bed before winter."), ("Results", "Rotate the beans next year.")]
    for junk in ("Home", "cookies", "Great post", "All rights reserved", "tracking"):
        assert junk not in doc.text


def test_text_after_unclosed_embed_is_kept():
    page = f"<html><body><h1>T</h1><p>{BODY[0]}</p><embed src='movie.swf'><p>{BODY[1]}</p><p>{BODY[2]}</p></body></html>"
    assert texts(document.load(page, "x.html", MB)) == BODY[:3]


def test_page_with_unclosed_head_keeps_its_text():
    page = f"<html><head><title>Page</title><body><h1>Heading</h1><p>{BODY[0]}</p><p>{BODY[1]}</p></body></html>"
    doc = document.load(page, "x.html", MB)
    assert texts(doc) == BODY[:2] and doc.title == "Heading"


def test_form_wrapped_aspnet_page_keeps_its_text():
    page = (f"<html><body><form method='post' action='Default.aspx' id='form1'>"
            f"<input type='hidden' name='__VIEWSTATE' value='dDwtMTA4'><h1>Council minutes</h1>"
            f"<p>{BODY[0]}</p><p>{BODY[1]}</p><p>{BODY[2]}</p></form></body></html>")
    doc = document.load(page, "x.aspx.html", MB)
    assert texts(doc) == BODY[:3] and doc.title == "Council minutes"


def test_copyright_footer_is_not_a_citable_paragraph():
    page = (f"<html><body><article><h1>Blog post</h1><p>{BODY[0]}</p></article>"
            "<footer>© 2024 Example Science Blog. All rights reserved.</footer></body></html>")
    assert texts(document.load(page, "x.html", MB)) == [BODY[0]]


def test_html_fragment_without_html_tag_is_read():
    assert texts(document.load(f"<p>{BODY[0]}</p><p>{BODY[1]}</p>", "frag.html", MB)) == BODY[:2]


def test_html_with_only_scripts_is_refused():
    with pytest.raises(InputError, match="no paragraphs"):
        document.load("<html><body><script>x()</script></body></html>", "x.html", MB)


@pytest.mark.parametrize("depth", [300, 100_000])
def test_deeply_nested_page_keeps_its_text(depth):
    page = ("<html><body>" + "<div>" * depth + f"<p>{BODY[0]}</p>" + "</div>" * depth
            + f"<p>{BODY[1]}</p></body></html>")
    doc = document.load(page, "deep.html", 5 * MB)
    assert texts(doc) == BODY[:2]
    assert doc.warnings == ("The page's main text could not be told apart from the rest: all of its text was kept.",)


# Pages without an <article>/<main> frame (DocBook, Texinfo): trafilatura recovers their
# paragraphs but drops every heading; they are put back (found by a new user on Debian's
# users-and-groups.html and libffi's manual).
DOCBOOK_PAGE = """<HTML><HEAD><TITLE>Users and Groups</TITLE></HEAD><BODY>
<DIV CLASS="TITLEPAGE"><H1 CLASS="TITLE">Users and Groups</H1><H3 CLASS="AUTHOR">Joey Hess</H3>
<P CLASS="COPYRIGHT">Copyright 2001, 2002 Joey Hess</P></DIV>
<DIV CLASS="CHAPTER"><HR><H1>Chapter 1. Introduction</H1>
<P>The base package contains the master versions of the password and group files.</P>
<P>This document describes the purposes of the individual entries.</P></DIV>
<DIV CLASS="CHAPTER"><H1>Chapter 2. Users and Groups</H1><DIV CLASS="VARIABLELIST"><DL>
<DT>root</DT><DD><P>Root is (typically) the superuser.</P></DD>
<DT>postgres</DT><DD><P>Postgresql databases are owned by this user and group.</P></DD>
</DL></DIV></DIV></BODY></HTML>"""


def test_frameless_docbook_page_keeps_chapter_headings_and_definition_terms_as_sections():
    doc = document.load(DOCBOOK_PAGE, "users-and-groups.html", MB)
    assert [(p.section, p.text) for p in doc.paragraphs] == [
        ("", "Copyright 2001, 2002 Joey Hess"),  # its author's name is not a section
        ("Chapter 1. Introduction", "The base package contains the master versions of the password and group files."),
        ("Chapter 1. Introduction", "This document describes the purposes of the individual entries."),
        ("root", "Root is (typically) the superuser."),
        ("postgres", "Postgresql databases are owned by this user and group."),
    ]
    assert doc.title == "Users and Groups"


TEXINFO_PAGE = """<html><head><title>Closure Example (libffi)</title></head><body>
<div class="section" id="Closure-Example"><div class="header"><p>
Next: <a href="Thread-Safety.html">Thread Safety</a>, Previous: <a href="The-Closure-API.html">The Closure API</a>,
Up: <a href="Using-libffi.html">Using libffi</a> &nbsp; [<a href="Index.html">Index</a>]</p></div><hr>
<h3 class="section">2.6 Closure Example</h3>
<p>A trivial example that creates a new <code>puts</code> by binding <code>fputs</code> with <code>stdout</code>.</p>
</div></body></html>"""


def test_texinfo_navigation_line_is_not_a_paragraph_and_its_heading_is_the_section():
    doc = document.load(TEXINFO_PAGE, "Closure-Example.html", MB)
    assert [(p.number, p.section, p.text) for p in doc.paragraphs] == [
        (1, "2.6 Closure Example", "A trivial example that creates a new puts by binding fputs with stdout.")]
