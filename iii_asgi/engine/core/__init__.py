"""The engine core: worker connections, the registries of functions / trigger types /
triggers, invocation and trigger routing, channels, the ``engine::*`` functions and engine
spans (protocol.md §1–3, §5–7). It imports no built-in worker: workers reach it through
:mod:`.worker` (docs/engine.md, "Layout")."""
