"""make_backend: the one place that knows every backend kind."""

from __future__ import annotations

from groot_ros.core.layout import Layout
from groot_ros.ros.backends.base import CommandBackend
from groot_ros.ros.backends.config import BackendConfig, load_backend_config
from groot_ros.ros.backends.sdk import SdkBackend
from groot_ros.ros.backends.topics import TopicsBackend


def make_backend(kind: str, layout: Layout, config: BackendConfig | None = None) -> CommandBackend:
    config = config or load_backend_config()
    if kind == "topics":
        return TopicsBackend(layout, config)
    if kind == "sdk":
        return SdkBackend(layout, config)
    raise ValueError(f"unknown backend '{kind}': expected 'topics' or 'sdk'")
