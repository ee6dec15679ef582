"""Test double of Vitis AI's ``xir`` module (the part DeepYN uses), for machines without Vitis AI.

Put this folder on ``sys.path`` (``monkeypatch.syspath_prepend``) and ``import xir`` finds it. A "fake
xmodel" is a JSON file (see ``fake_xmodel.write_fake_xmodel``) describing the graph's child subgraphs,
their ``device`` attribute and, for DPU subgraphs, the int8 tensors (dims in NHWC, ``fix_point``) and
the reference model the fake ``vart`` runner computes with. The surface mirrors the real API:
``Graph.deserialize``, ``get_root_subgraph().toposort_child_subgraph()``, ``Subgraph.get_name/has_attr/
get_attr/get_input_tensors/get_output_tensors``, ``Tensor.name/dims/dtype/get_attr/has_attr``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__version__ = "3.0.0-fake"


class Tensor:
    def __init__(self, name: str, dims: list[int], attrs: dict[str, Any], dtype: str = "xint8") -> None:
        self.name = name
        self.dims = list(dims)  # the real binding returns a fresh list too
        self.dtype = dtype
        self._attrs = dict(attrs)

    def has_attr(self, key: str) -> bool:
        return key in self._attrs

    def get_attr(self, key: str) -> Any:
        if key not in self._attrs:
            raise RuntimeError(f"[XIR_INVALID_ATTR_NAME] tensor {self.name} has no attribute {key}")
        return self._attrs[key]

    def get_attrs(self) -> dict[str, Any]:
        return dict(self._attrs)

    def __repr__(self) -> str:
        return f"xir.Tensor(name={self.name}, dims={self.dims}, dtype={self.dtype})"


def _tensors(specs: list[dict[str, Any]]) -> list[Tensor]:
    return [
        Tensor(s["name"], s["dims"], {"fix_point": s["fix_point"]} if "fix_point" in s else {})
        for s in specs
    ]


class Subgraph:
    def __init__(self, spec: dict[str, Any], graph: Graph, children: list[Subgraph] | None = None) -> None:
        self._spec = spec
        self._graph = graph
        self._children = children or []
        self._attrs = {k: v for k, v in spec.get("attrs", {}).items()}
        if "device" in spec:
            self._attrs["device"] = spec["device"]
        self._inputs = _tensors(spec.get("inputs", []))
        self._outputs = _tensors(spec.get("outputs", []))

    # real API
    def get_name(self) -> str:
        return str(self._spec["name"])

    def has_attr(self, key: str) -> bool:
        return key in self._attrs

    def get_attr(self, key: str) -> Any:
        if key not in self._attrs:
            raise RuntimeError(f"[XIR_INVALID_ATTR_NAME] subgraph {self.get_name()} has no attribute {key}")
        return self._attrs[key]

    def get_attrs(self) -> dict[str, Any]:
        return dict(self._attrs)

    def is_root(self) -> bool:
        return bool(self._children)

    def get_children(self) -> set[Subgraph]:
        return set(self._children)

    def toposort_child_subgraph(self) -> list[Subgraph]:
        return list(self._children)

    def get_input_tensors(self) -> set[Tensor]:
        return set(self._inputs)

    def get_output_tensors(self) -> set[Tensor]:
        return set(self._outputs)

    def get_graph(self) -> Graph:
        return self._graph

    # for the fake vart runner only
    @property
    def fake_spec(self) -> dict[str, Any]:
        return self._spec

    @property
    def fake_inputs(self) -> list[Tensor]:
        return list(self._inputs)

    @property
    def fake_outputs(self) -> list[Tensor]:
        return list(self._outputs)

    def __repr__(self) -> str:
        return f"xir.Subgraph(name={self.get_name()})"


class Graph:
    def __init__(self, spec: dict[str, Any], path: Path) -> None:
        self._spec = spec
        self.fake_path = path
        children = [Subgraph(s, self) for s in spec.get("subgraphs", [])]
        self._root = Subgraph({"name": "root"}, self, children)

    @staticmethod
    def deserialize(path: str) -> Graph:
        p = Path(path)
        try:
            spec = json.loads(p.read_text(encoding="utf-8"))
            if spec.get("format") != "fake-xmodel/1":
                raise ValueError("not a fake xmodel")
        except Exception as exc:  # noqa: BLE001 - the real runtime raises RuntimeError for bad files
            raise RuntimeError(f"[XIR_PROTECTED_MEMORY] Failed to deserialize {path}: {exc}") from None
        return Graph(spec, p)

    def get_name(self) -> str:
        return str(self._spec.get("name", "graph"))

    def get_root_subgraph(self) -> Subgraph:
        return self._root
