"""The demo help page that ``rag-explorer serve`` shows at ``/``: a small help center with the widget.

It loads nothing from elsewhere: its own inline style, and ``/widget.js`` from the same server (with the
publishable key of a site that allows the server's origin, when one is configured). The page has its own
styles for buttons, links and headings, as a real help center would; the widget's Shadow DOM keeps them
out.
"""

from __future__ import annotations

from html import escape

DEFAULT_TITLE = "Help Center"

_STYLE = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.6 Georgia,'Times New Roman',serif;color:#1d2430;background:#f7f7f4}
header{background:#17324d;color:#fff;padding:14px 24px;display:flex;align-items:center;gap:24px;
flex-wrap:wrap}
header .brand{font:700 20px/1.2 system-ui,sans-serif;color:#fff;text-decoration:none}
header nav a{color:#dce8f5;margin-right:16px;font-family:system-ui,sans-serif;font-size:15px}
main{max-width:760px;margin:0 auto;padding:32px 24px 96px}
h1{font-size:34px;margin:0 0 8px}
h2{font-size:22px;margin:32px 0 8px;border-bottom:2px solid #d9d4c7;padding-bottom:4px}
.lead{font-size:19px;color:#3c4656}
ul.topics{padding-left:20px}
.contact{background:#fff;border:1px solid #d9d4c7;border-radius:6px;padding:16px 20px;margin-top:32px}
.contact h2{margin-top:0}
button{font:600 15px system-ui,sans-serif;background:#a33b12;color:#fff;border:0;border-radius:3px;
padding:10px 16px;text-transform:uppercase;letter-spacing:.06em;cursor:pointer}
button:focus-visible,a:focus-visible{outline:3px solid #a33b12;outline-offset:2px}
footer{max-width:760px;margin:0 auto;padding:0 24px 32px;color:#4d5561;font-size:14px}
code{font-size:14px;background:#ece9e0;padding:1px 4px}
"""

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<header>
<a class="brand" href="/">{title}</a>
<nav aria-label="Sections"><a href="#start">Getting started</a><a href="#topics">Popular topics</a>
<a href="#contact">Contact us</a></nav>
</header>
<main>
<h1 id="start">How can we help?</h1>
<p class="lead">Search our documentation in your own words. Press <strong>Help</strong> at the bottom
right of any page and type your question: the answer quotes the documentation, with numbered links to
the pages it comes from.</p>
<p>When the documentation does not cover your question, the assistant says so instead of guessing, and
offers to pass your question to our support team with what you have already seen, so you do not have to
explain it twice.</p>
<h2 id="topics">Popular topics</h2>
<ul class="topics">
<li>Installing and getting started</li>
<li>Accounts, keys and access</li>
<li>Configuration and troubleshooting</li>
</ul>
<section class="contact" aria-labelledby="contact">
<h2 id="contact">Contact us</h2>
<p>Most questions are answered in seconds by the help assistant. If it cannot help, it opens a request
to our support team with your question filled in.</p>
<button type="button" id="open-help">Ask a question</button>
</section>
</main>
<footer>
<p>This demo page is served by <code>rag-explorer serve</code> and answers from the documents ingested
into its index. Put the same widget on your own pages with one script tag (see docs/widget.md).</p>
</footer>
<script>
document.getElementById("open-help").addEventListener("click", function () {{
  if (window.ragExplorerWidget) window.ragExplorerWidget.open();
}});
</script>
<script src="/widget.js"{key} async></script>
</body>
</html>
"""


def demo_page_html(*, key: str | None, title: str = DEFAULT_TITLE) -> str:
    """The page; ``key`` (a site's publishable key) goes on the script tag as ``data-key``."""
    key_attr = f' data-key="{escape(key, quote=True)}"' if key else ""
    return _PAGE.format(title=escape(title), style=_STYLE.strip(), key=key_attr)
