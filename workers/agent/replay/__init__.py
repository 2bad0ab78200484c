"""Replay (issue 16): record an agent run's tool calls with robust element targets, play them back later
with no LLM call, and heal a step that no longer fits with one planner call.

- the script format (`ScriptDoc`, `ScriptStep`, `Target`) is `app.scripts.document`, shared with the API;
- `record`: `Recorder`, the loop's `ActionRecorder` that turns executed calls into script steps;
- `locate`: finding a recorded target in a fresh page capture (role + name + position, then fallbacks);
- `play`: `replay(...)`, the step loop of a replay.

This package is the agent's top layer: it builds on the loop, the planner and the tools and nothing
builds on it except the worker (`workers/scripted.py`).
"""
