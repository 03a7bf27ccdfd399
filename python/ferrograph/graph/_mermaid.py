"""Mermaid flowchart text of a drawn graph, character for character as LangGraph (through
langchain_core) prints it: a YAML frontmatter block with the flowchart config, the nodes in
order (START and END as stadiums, metadata under a rule), the edges in order (dotted when
conditional, with labels), and the class styles."""

from __future__ import annotations

import re
import string
from typing import Any, Optional

_SAFE_ID = frozenset(string.ascii_letters + string.digits + "_-")
_MARKDOWN = tuple("*_`")
_LABEL_ESCAPES = (
    ("#", "#35;"),  # first: the other escapes contain '#'
    ("[", "#91;"),
    ("]", "#93;"),
    ("(", "#40;"),
    (")", "#41;"),
    ("{", "#123;"),
    ("}", "#125;"),
    ('"', "#quot;"),
    ("<", "#60;"),
    (">", "#62;"),
    ("|", "#124;"),
)


def _safe_id(name: str) -> str:
    """A Mermaid id: letters, digits, '_' and '-' as they are, anything else as '\\<hex>'."""
    return "".join(c if c in _SAFE_ID else "\\" + format(ord(c), "x") for c in name)


def _escape(text: str) -> str:
    for char, entity in _LABEL_ESCAPES:
        text = text.replace(char, entity)
    return text


def _metadata_value(value: Any) -> Optional[str]:
    scalars = (str, int, float, bool)
    if isinstance(value, scalars):
        return str(value)
    if isinstance(value, (list, tuple, set)) and all(isinstance(v, scalars) for v in value):
        items = [str(v) for v in value]
        return ", ".join(sorted(items) if isinstance(value, set) else items)
    return None  # anything else is not shown


def _label(name: str, metadata: Optional[dict[str, Any]]) -> str:
    name = name.split(":")[-1]
    label = f"<p>{name}</p>" if name.startswith(_MARKDOWN) and name.endswith(_MARKDOWN) else name
    lines = [_escape(f"{k} = {text}") for k, v in (metadata or {}).items() if (text := _metadata_value(v)) is not None]
    if lines:
        label += "<hr/><small><em>" + "\n".join(lines) + "</em></small>"
    return label


def _edge_label(data: Any, conditional: bool, wrap: int) -> str:
    if data is None:
        return " -.-> " if conditional else " --> "
    words = str(data).split()
    text = str(data)
    if len(words) > wrap:
        text = "&nbsp<br>&nbsp".join(" ".join(words[i : i + wrap]) for i in range(0, len(words), wrap))
    return f" -. &nbsp;{text}&nbsp; .-> " if conditional else f" -- &nbsp;{text}&nbsp; --> "


def mermaid_text(
    nodes: dict[str, Any],
    edges: list[Any],
    *,
    first: Optional[str],
    last: Optional[str],
    with_styles: bool,
    curve: str,
    styles: dict[str, str],
    wrap_label_n_words: int,
    frontmatter_config: Optional[dict[str, Any]],
) -> str:
    out: list[str] = []
    if with_styles:
        given = frontmatter_config or {}
        config = dict(given.get("config", {}))
        config["flowchart"] = {**config.get("flowchart", {}), "curve": curve}
        out.append("---\n" + _yaml({**given, "config": config}) + "---\n")
    out.append("graph TD;\n")

    def shape(key: str, node: Any) -> str:
        label = _label(node.name, node.metadata)
        if key == last:
            return f"\t{_safe_id(key)}([{label}]):::last\n"
        if key == first:
            return f"\t{_safe_id(key)}([{label}]):::first\n"
        return f"\t{_safe_id(key)}({label})\n"

    # A node id "sub:inner" (an expanded subgraph's node) is drawn inside subgraph "sub".
    nested_nodes: dict[str, dict[str, Any]] = {}
    for key, node in nodes.items():
        if ":" in key:
            nested_nodes.setdefault(key.rsplit(":", 1)[0], {})[key] = node
        elif with_styles:
            out.append(shape(key, node))
    # Edges go with the longest id prefix their ends share, part by part; a self-loop shares
    # its whole id, so it comes after the top-level edges, as in LangGraph.
    groups: dict[str, list[Any]] = {}
    for edge in edges:
        parts = zip(edge.source.split(":"), edge.target.split(":"))
        groups.setdefault(":".join(s for s, t in parts if s == t), []).append(edge)
    opened: set[str] = set()

    def block(group: list[Any], prefix: str) -> None:
        self_loop = len(group) == 1 and group[0].source == group[0].target
        if prefix and not self_loop:
            name = prefix.rsplit(":", 1)[-1]
            if name in opened:
                raise ValueError(
                    f"Found duplicate subgraph '{name}' -- this likely means that you're reusing a subgraph "
                    "node with the same name. Please adjust your graph to have subgraph nodes with unique names."
                )
            opened.add(name)
            out.append(f"\tsubgraph {name}\n")
            if with_styles:
                out.extend(shape(k, n) for k, n in nested_nodes.get(prefix, {}).items())
        for edge in group:
            arrow = _edge_label(edge.data, edge.conditional, wrap_label_n_words)
            out.append(f"\t{_safe_id(edge.source)}{arrow}{_safe_id(edge.target)};\n")
        for inner, inner_group in groups.items():
            if inner.startswith(prefix + ":") and inner != prefix and ":" not in inner[len(prefix) + 1 :]:
                block(inner_group, inner)
        if prefix and not self_loop:
            out.append("\tend\n")

    block(groups.get("", []), "")
    for prefix, group in groups.items():
        if prefix and ":" not in prefix:
            block(group, prefix)
            opened.add(prefix)
    if with_styles:
        for prefix, members in nested_nodes.items():
            if ":" not in prefix and prefix not in opened:
                out.append(f"\tsubgraph {prefix}\n")
                out.extend(shape(k, n) for k, n in members.items())
                out.append("\tend\n")
                opened.add(prefix)
        out.extend(f"\tclassDef {name} {style}\n" for name, style in styles.items())
    return "".join(out)


# YAML as PyYAML's `yaml.dump(..., default_flow_style=False)` writes the frontmatter: keys
# sorted, two-space indents, sequences not indented under their key, a string quoted (single
# quotes) where plain it would read back as something else or break the syntax.

_IMPLICIT = re.compile(
    r"""^(?:
        yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF
      | ~|null|Null|NULL
      | [-+]?0b[0-1_]+ | [-+]?0[0-7_]+ | [-+]?(?:0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+
      | [-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
      | [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)? | \.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
      | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]* | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)
      | [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
      | [0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[\ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
        (?:[\ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?
      | <<| =
    )$""",
    re.X,
)
_INDICATORS = "#,[]{}&*!|>'\"%@`"


def _plain(text: str) -> bool:
    if not text or text != text.strip(" ") or _IMPLICIT.match(text):
        return False
    if text.startswith(("---", "...")) or text[0] in _INDICATORS:
        return False
    if text[0] in "?:-" and (len(text) == 1 or text[1] == " "):
        return False
    if ": " in text or " #" in text or text.endswith(":"):
        return False
    return all(c.isprintable() for c in text)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return ".nan"
        if value in (float("inf"), float("-inf")):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value).lower()
        return text.replace("e", ".0e", 1) if "." not in text and "e" in text else text
    text = str(value)
    if _plain(text):
        return text
    if all(c.isprintable() for c in text):
        return "'" + text.replace("'", "''") + "'"
    return '"' + text.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'


def _yaml(value: Any, indent: int = 0) -> str:
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return "{}\n"
        lines = []
        for key in sorted(value):
            item = value[key]
            if isinstance(item, dict) and item:
                lines.append(f"{pad}{_scalar(key)}:\n{_yaml(item, indent + 2)}")
            elif isinstance(item, (list, tuple)) and item:
                lines.append(f"{pad}{_scalar(key)}:\n{_yaml(list(item), indent)}")
            else:
                lines.append(f"{pad}{_scalar(key)}: {_yaml(item).rstrip(chr(10))}\n")
        return "".join(lines)
    if isinstance(value, list):
        if not value:
            return "[]\n"
        lines = []
        for item in value:
            body = _yaml(item, indent + 2) if isinstance(item, (dict, list)) and item else _yaml(item)
            lines.append(f"{pad}- {body.lstrip(' ')}" if isinstance(item, dict) and item else f"{pad}- {body}")
        return "".join(lines)
    return _scalar(value) + "\n"
