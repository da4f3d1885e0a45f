"""Two of WeasyPrint 70's costs per page, cut for documents of hundreds of letters.

WeasyPrint gives every page a page type of its own (its number is part of it), and for each
one it walks the cascaded styles of *every element of the document* to find the page's margin
boxes (``set_page_type_computed_styles``): a chunk of ``n`` letters pays ``n`` times ``n``
letters' elements. Then it builds and sizes the sixteen margin boxes of each page
(``make_margin_boxes``) even when no stylesheet declares one. Together they were about a tenth
of a letter's layout time at 250 letters a document, and the first grows with the document.

:func:`install` replaces both with equivalents that give the same pages: the margin boxes of a
page type are looked up by the names the stylesheets' ``@page`` rules declare, and a document
whose margin box rules give no box a ``content`` gets no margin boxes without building sixteen
empty ones (a letter's own ``<style>`` with ``@page { @bottom-center { content: ... } }``
still gets its box). Only WeasyPrint 70 is patched (``pyproject.toml`` pins it); another
version is left as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

_installed: list[bool] = []


def _margin_rules(style_for: Any) -> Iterator[tuple[str, list[tuple[str, Any, Any]]]]:
    """The name (``@top-center``...) and declarations of each margin box rule of the
    document's stylesheets (WeasyPrint's own included: it aligns the text of each box)."""
    for sheet, _origin, _specificity in style_for._sheets:
        for _rule, selectors, declarations in sheet.page_rules:
            for selector in selectors:
                if selector[1]:
                    yield selector[1], declarations


def _generated(style_for: Any) -> bool:
    """Whether a margin box of the document may be generated: one with a ``content`` (without,
    a box's content is ``normal``, and WeasyPrint generates no box)."""
    return any(
        name == "content"
        for _box, declarations in _margin_rules(style_for)
        for name, *_ in declarations
    )


def install() -> bool:
    """Patch WeasyPrint 70's page styles and margin boxes (see the module); ``False`` for
    another version. Idempotent."""
    import weasyprint
    from weasyprint import layout
    from weasyprint.layout import page

    if _installed:
        return True
    if not weasyprint.__version__.startswith("70."):
        return False
    original_margins = layout.make_margin_boxes

    def set_page_type_computed_styles(page_type: Any, html: Any, style_for: Any) -> None:
        style_for.add_page_declarations(page_type)
        root = html.etree_element
        style_for.set_computed_styles(page_type, root=root, parent=root, base_url=html.base_url)
        cascaded = style_for.get_cascaded_styles()
        for name in {box for box, _declarations in _margin_rules(style_for)}:
            if (page_type, name) in cascaded:
                style_for.set_computed_styles(
                    page_type,
                    pseudo_type=name,
                    root=root,
                    parent=page_type,
                    base_url=html.base_url,
                )

    def make_margin_boxes(context: Any, page_box: Any, state: Any) -> Any:
        if not _generated(context.style_for):
            return iter(())
        return original_margins(context, page_box, state)

    page.set_page_type_computed_styles = set_page_type_computed_styles
    layout.make_margin_boxes = make_margin_boxes  # where the pages are laid out
    _installed.append(True)
    return True
