// Wayfarer live view (app/web/templates/_live.html): draws the browser's frames as they come, says what
// the run is doing, reconnects by itself, and lets the viewer take control of a run, forward their mouse,
// wheel and keyboard while they hold it, and give it back.
// Sockets (same origin, the session cookie): /v1/runs/{id}/live (binary frames: 2-byte header length,
// JSON header, JPEG; JSON text status; commands take_control / give_back) and, while holding control of
// a paused run, /v1/runs/{id}/live/input (JSON input events).
"use strict";

(function () {
  const root = document.querySelector("[data-live-kind]");
  if (!root) return;
  const kind = root.dataset.liveKind;
  const id = root.dataset.liveId;
  const base = (location.protocol === "https:" ? "wss://" : "ws://") + location.host +
    (kind === "run" ? "/v1/runs/" : "/v1/browser_sessions/") + encodeURIComponent(id) + "/live";
  const el = (name) => root.querySelector("[data-live-" + name + "]");
  const screen = el("screen"), image = el("frame"), empty = el("empty"), stateText = el("state");
  const reasonText = el("reason"), errorText = el("error"), urlText = el("url");
  const takeButton = el("take"), giveButton = el("give");
  const MOVE_EVERY_MS = 50;

  let socket = null, input = null, status = null, header = null, ended = false;
  let retryMs = 500, shownUrl = null, lastMove = 0;

  function describe(s) {
    if (s.final) return "The " + (s.kind === "run" ? "run" : "session") + " ended: " + s.status.replace("_", " ") + ".";
    if (s.kind !== "run") return s.status === "running" ? "The session's browser, live." : "The session is starting…";
    if (s.paused && s.you_hold) return "You hold control: the agent waits; your mouse and keyboard reach the page.";
    if (s.paused && s.held) return "Paused: another API key holds control.";
    if (s.paused) return "Paused: waiting for a person to take control.";
    if (s.pause_requested && s.you_hold) return "Taking control: the agent stops after its current step…";
    if (s.status === "queued" || s.status === "created") return "Waiting for a worker to start the run…";
    return "The agent is working.";
  }

  function showStatus(s) {
    status = s;
    stateText.textContent = describe(s);
    reasonText.hidden = !(s.reason && s.paused);
    reasonText.textContent = s.reason ? "The agent asks: " + s.reason : "";
    if (takeButton) takeButton.hidden = s.final || s.you_hold || s.held;
    if (giveButton) giveButton.hidden = s.final || !s.you_hold;
    const holding = Boolean(s.paused && s.you_hold && !s.final);
    screen.dataset.holding = holding ? "1" : "0";
    if (holding) openInput(); else closeInput();
    if (s.final) {
      ended = true;
      if (socket) socket.close();
    }
  }

  function showError(text) {
    errorText.hidden = !text;
    errorText.textContent = text || "";
  }

  function showFrame(data) {
    const view = new DataView(data);
    const size = view.getUint16(0);
    header = JSON.parse(new TextDecoder().decode(new Uint8Array(data, 2, size)));
    const url = URL.createObjectURL(new Blob([new Uint8Array(data, 2 + size)], { type: "image/jpeg" }));
    const previous = image.src;
    image.onload = () => { if (previous.startsWith("blob:")) URL.revokeObjectURL(previous); };
    image.src = url;
    image.hidden = false;
    empty.hidden = true;
    screen.dataset.inputs = String(header.inputs || 0); // input events the browser has applied so far
    if (header.url !== shownUrl) {
      shownUrl = header.url;
      urlText.textContent = (header.tabs > 1 ? "Tab " + (header.tab + 1) + " of " + header.tabs + ": " : "") +
        (header.title ? header.title + " — " : "") + header.url;
    }
  }

  function connect() {
    if (ended) return;
    socket = new WebSocket(base);
    socket.binaryType = "arraybuffer";
    socket.onopen = () => { retryMs = 500; showError(""); };
    socket.onmessage = (event) => {
      if (typeof event.data !== "string") return showFrame(event.data);
      const message = JSON.parse(event.data);
      if (message.type === "status") showStatus(message);
      else if (message.type === "error") showError(message.detail);
    };
    socket.onclose = () => {
      socket = null;
      closeInput();
      if (ended) return;
      stateText.textContent = "Connection lost; reconnecting…";
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 5000);
    };
  }

  function command(name) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: name }));
  }

  function openInput() {
    if (input) return;
    input = new WebSocket(base + "/input");
    input.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "error") showError(message.detail);
    };
    input.onclose = () => { input = null; };
    screen.focus();
  }

  function closeInput() {
    if (input) input.close();
    input = null;
  }

  function send(event) {
    if (input && input.readyState === WebSocket.OPEN) input.send(JSON.stringify(event));
  }

  function point(event) {
    const box = image.getBoundingClientRect();
    const width = header ? header.width : 1280, height = header ? header.height : 720;
    const x = Math.min(Math.max((event.clientX - box.left) * width / box.width, 0), width);
    const y = Math.min(Math.max((event.clientY - box.top) * height / box.height, 0), height);
    return { x: Math.round(x * 10) / 10, y: Math.round(y * 10) / 10 };
  }

  const BUTTONS = ["left", "middle", "right"];
  const holding = () => screen.dataset.holding === "1" && header !== null;
  const MODIFIERS = [["altKey", "Alt"], ["ctrlKey", "Control"], ["metaKey", "Meta"], ["shiftKey", "Shift"]];

  screen.addEventListener("mousedown", (event) => {
    if (!holding()) return;
    event.preventDefault();
    screen.focus();
    send({ type: "mouse", action: "down", button: BUTTONS[event.button] || "left", click_count: event.detail || 1, ...point(event) });
  });
  screen.addEventListener("mouseup", (event) => {
    if (!holding()) return;
    event.preventDefault();
    send({ type: "mouse", action: "up", button: BUTTONS[event.button] || "left", click_count: event.detail || 1, ...point(event) });
  });
  screen.addEventListener("mousemove", (event) => {
    if (!holding() || event.timeStamp - lastMove < MOVE_EVERY_MS) return;
    lastMove = event.timeStamp;
    send({ type: "mouse", action: "move", ...point(event) });
  });
  screen.addEventListener("contextmenu", (event) => { if (holding()) event.preventDefault(); });
  screen.addEventListener("wheel", (event) => {
    if (!holding()) return;
    event.preventDefault();
    const clamp = (v) => Math.max(-5000, Math.min(5000, v));
    send({ type: "wheel", dx: clamp(event.deltaX), dy: clamp(event.deltaY), ...point(event) });
  }, { passive: false });
  screen.addEventListener("keydown", (event) => {
    if (!holding()) return;
    event.preventDefault();
    const modifiers = MODIFIERS.filter(([flag]) => event[flag]).map(([, name]) => name);
    const shortcut = modifiers.some((name) => name !== "Shift");
    if (event.key.length === 1 && !shortcut) {
      send({ type: "text", text: event.key }); // typed text, whatever the keyboard layout
    } else if (!["Alt", "Control", "Meta", "Shift"].includes(event.key)) {
      send({ type: "key", key: event.key === " " ? "Space" : event.key, modifiers: event.key.length === 1 ? modifiers : modifiers.filter((m) => m !== "Shift") });
    }
  });
  screen.addEventListener("paste", (event) => {
    if (!holding()) return;
    event.preventDefault();
    const text = (event.clipboardData && event.clipboardData.getData("text")) || "";
    for (let i = 0; i < text.length; i += 1000) send({ type: "text", text: text.slice(i, i + 1000) });
  });

  if (takeButton) takeButton.addEventListener("click", () => command("take_control"));
  if (giveButton) giveButton.addEventListener("click", () => command("give_back"));
  connect();
})();
