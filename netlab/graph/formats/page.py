"""HTML: one self-contained page (no script, no link to anything): the SVG picture inline, a legend of what
each shape and line means and, with a highlighted path, its steps in order."""
from __future__ import annotations

from html import escape

from ..graphviz import run_dot
from ..model import Format, Graph, Path
from ..style import EDGES, ELEMENTS, HIGHLIGHT
from . import dot

CSS = """body{font-family:Helvetica,Arial,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}
.picture{overflow:auto;border:1px solid #ccc;padding:.5em}
table{border-collapse:collapse}td,th{padding:.2em .6em;text-align:left;vertical-align:middle}
.swatch{display:inline-block;width:2.2em;height:1.1em;border:1px solid #666}
.line{display:inline-block;width:2.6em;border-top-width:3px}
code{font-size:.95em}"""


def _svg(graph: Graph, path: Path) -> str:
    """The picture, without the XML prolog and DOCTYPE (which may not stand inside HTML)."""
    svg = run_dot(dot.render(graph, path), "svg").decode()
    return svg[svg.index("<svg"):]


def render(graph: Graph, path: Path) -> str:
    title = f"netlab lab {graph.lab}"
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{escape(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
           f"<h1>{escape(title)}</h1>",
           f"<p>Backend <b>{escape(graph.backend)}</b>, kube-proxy mode <b>{escape(graph.proxy_mode)}</b>; "
           f"{sum(e.kind == 'node' for e in graph.elements)} nodes, {sum(e.kind == 'pod' for e in graph.elements)} "
           f"pods, {sum(e.kind == 'service' for e in graph.elements)} services.</p>",
           f'<div class="picture">{_svg(graph, path)}</div>']
    if path.steps:
        out.append("<h2>Path</h2>")
        out.append("<ol>" + "".join(f"<li><code>{escape(s)}</code> {escape(graph.element(s).label)}</li>"
                                    for s in path.steps) + "</ol>")
    out.append("<h2>Legend</h2>")
    out.append("<table>")
    for kind, look in ELEMENTS.items():
        out.append(f'<tr><td><span class="swatch" style="background:{look.fill}"></span></td>'
                   f"<td><code>{escape(kind)}</code></td><td>{escape(look.meaning)}</td></tr>")
    for kind, line in EDGES.items():
        css = f"border-top-style:{'solid' if line.style == 'bold' else line.style};border-top-color:{line.colour}"
        out.append(f'<tr><td><span class="line" style="{css}"></span></td>'
                   f"<td><code>{escape(kind)}</code></td><td>{escape(line.meaning)}</td></tr>")
    out.append(f'<tr><td><span class="line" style="border-top-style:solid;border-top-color:{HIGHLIGHT}"></span></td>'
               "<td><b>highlighted</b></td><td>a path drawn over the lab (a trace): its elements numbered [1], "
               "[2] ..., its hops 1\u21922 ...</td></tr>")
    out += ["</table>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


FORMAT = Format("html", 50, render, (".html", ".htm"), help="a self-contained HTML page: the SVG and a legend")
