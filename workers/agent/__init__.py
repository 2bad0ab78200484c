"""The agent: drives one run's browser step by step with an LLM planner (docs/architecture.md).

contract.py  the types every part shares     loop.py        the step loop (drive)
planner.py   one chat completion per step    tools/         the tool registry and the tools
page_state.py what the model sees of a page  browser.py     Chromium: the pool and a run's context
"""
