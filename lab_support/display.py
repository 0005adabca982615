"""Show things in a notebook, with a fallback for every front end.

Each output is one MIME bundle: an ipywidgets view (used by JupyterLab when its widget
manager is present), an HTML rendering (saved notebooks, papermill, nbviewer) and plain text
(terminals, tests). Nothing here waits for a click.
"""

from __future__ import annotations

import base64
import html
import io
import os


def in_kernel() -> bool:
    """True inside a Jupyter kernel (a front end may or may not be attached)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def show(*, text: str, html_text: str | None = None, widget=None,
         display_id: str | None = None, update: bool = False) -> None:
    if not in_kernel():
        print(text)
        return
    from IPython.display import display, update_display

    bundle = {"text/plain": text}
    if html_text is not None:
        bundle["text/html"] = html_text
    if widget is not None:
        view = widget._repr_mimebundle_()
        view = view[0] if isinstance(view, tuple) else view
        bundle.update({k: v for k, v in view.items() if k != "text/plain"})
    if update and display_id:
        update_display(bundle, raw=True, display_id=display_id)
    else:
        display(bundle, raw=True, display_id=display_id)


def figure_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()


def png_img_tag(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"/>'


def show_figure(fig, *, alt: str, display_id: str | None = None,
                update: bool = False) -> None:
    """A matplotlib figure as a static PNG, which the saved notebook keeps. Figures here
    are built with ``matplotlib.figure.Figure`` (not pyplot), so the inline backend never
    shows them a second time."""
    png = figure_png(fig)
    if not in_kernel():
        print(f"[figure: {alt}]")
        return
    from IPython.display import display, update_display

    bundle = {"image/png": base64.b64encode(png).decode(), "text/plain": f"<{alt}>"}
    if update and display_id:
        update_display(bundle, raw=True, display_id=display_id)
    else:
        display(bundle, raw=True, display_id=display_id)


def table_html(rows: list[tuple[str, str]], title: str, css_class: str) -> str:
    cells = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                    f"<td style='text-align:left'>{v}</td></tr>" for k, v in rows)
    return (f"<div class='{css_class}'><b>{html.escape(title)}</b>"
            f"<table>{cells}</table></div>")


def notebook_name() -> str | None:
    """The notebook this kernel runs, as the Jupyter server named it (``JPY_SESSION_NAME``,
    which ipykernel also puts in ``__session__``); None in papermill or a plain script."""
    name = os.environ.get("JPY_SESSION_NAME")
    if not name:
        try:
            from IPython import get_ipython
        except ImportError:
            return None
        shell = get_ipython()
        name = getattr(shell, "user_ns", {}).get("__session__") if shell is not None else None
    return str(name) if name else None


def cell_number() -> int | None:
    """The IPython execution count of the running cell (None outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return getattr(shell, "execution_count", None) if shell is not None else None


class ShownInCell:
    """For objects a lab call already displayed: when such an object is also the cell's last
    expression, IPython would echo it a second time; within the same cell it shows nothing,
    in a later cell it shows itself again (``redisplay``)."""

    _shown_in: int | None = None

    def mark_shown(self) -> None:
        self._shown_in = cell_number()

    def _ipython_display_(self) -> None:
        if self._shown_in is not None and self._shown_in == cell_number():
            return
        self.redisplay()

    def redisplay(self) -> None:
        print(repr(self))
