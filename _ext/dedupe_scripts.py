"""A Sphinx extension of the book: each page lists each script once.

sphinx-thebe (loaded by Jupyter Book whether or not a book uses live code) adds its configuration
script, ``const THEBE_JS_URL = ...``, twice to every page; the second copy throws "Identifier
'THEBE_JS_URL' has already been declared" in the browser's console. This drops repeated scripts
(same file, same attributes and body) from every page's context before it is rendered.
"""


def _key(script) -> tuple:
    """What makes two scripts the same on the page: the file (None and "" both mean an inline script —
    Sphinx re-adds registry scripts with None turned into "", which is how the copies arise) and the
    attributes, the inline body among them."""
    attributes = getattr(script, "attributes", {}) or {}
    filename = getattr(script, "filename", script)
    return filename or "", tuple(sorted((k, str(v)) for k, v in attributes.items()))


def dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    seen, kept = set(), []
    for script in context.get("script_files", []):
        key = _key(script)
        if key not in seen:
            seen.add(key)
            kept.append(script)
    # in place: handlers after this one (sphinx.ext.mathjax on pages with math) add their scripts to this
    # very list, which Sphinx renders; a new list would lose them
    context["script_files"][:] = kept


def setup(app):
    # first: html-page-context is emitted with emit_firstresult, so a handler after one that returns a
    # template name is never called
    app.connect("html-page-context", dedupe_scripts, priority=1)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
