// The receiver's page: polls /_page/state and builds the DOM from display trees (slack_receiver/mrkdwn.py).
// Only createElement, setAttribute on a fixed list of attributes, and text nodes: message text never becomes HTML.
"use strict";

(() => {
  const TAGS = new Set(["div", "span", "b", "i", "s", "code", "pre", "a", "hr", "blockquote", "time", "details",
    "summary", "ul", "ol", "li"]);
  const ATTRS = new Set(["class", "title", "datetime", "data-ts"]);
  const SAFE_HREF = /^(https?:|mailto:)/i;
  const POLL_MS = 1000;
  const openThreads = new Set();
  let version = "";
  let channel = new URLSearchParams(window.location.search).get("channel") || "";

  function build(node) {
    if (typeof node === "string") return document.createTextNode(node);
    if (!Array.isArray(node) || !TAGS.has(node[0])) return document.createTextNode("");
    const element = document.createElement(node[0]);
    let children = node.slice(1);
    const attrs = children[0];
    if (attrs && typeof attrs === "object" && !Array.isArray(attrs)) {
      children = children.slice(1);
      for (const [name, value] of Object.entries(attrs)) {
        if (typeof value !== "string") continue;
        if (name === "href") {
          if (node[0] === "a" && SAFE_HREF.test(value)) {
            element.setAttribute("href", value);
            element.setAttribute("rel", "noopener noreferrer nofollow");
            element.setAttribute("target", "_blank");
          }
        } else if (ATTRS.has(name)) {
          element.setAttribute(name, value);
        }
      }
    }
    for (const child of children) element.appendChild(build(child));
    return element;
  }

  function channelLink(item, current) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.setAttribute("href", "?channel=" + encodeURIComponent(item.id));
    a.dataset.channel = item.name;
    if (item.id === current) a.className = "active";
    const name = document.createElement("span");
    name.className = "channel-name";
    name.textContent = "# " + item.name;
    a.appendChild(name);
    if (item.count) {
      const count = document.createElement("span");
      count.className = "channel-count";
      count.textContent = String(item.count);
      a.appendChild(count);
    }
    li.appendChild(a);
    return li;
  }

  function render(state) {
    const channels = document.getElementById("channels");
    channels.replaceChildren(...state.channels.map((item) => channelLink(item, state.channel.id)));
    document.getElementById("channel-name").textContent = "# " + state.channel.name;
    document.title = "#" + state.channel.name + " · CALI local Slack";
    const shown = state.messages.length;
    document.getElementById("summary").textContent =
      state.total > shown ? `${state.total} messages, the newest ${shown} shown` :
        `${state.total} message${state.total === 1 ? "" : "s"}`;
    const list = document.getElementById("messages");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const nodes = state.messages.map(build);
    if (!nodes.length) {
      const empty = document.createElement("p");
      empty.className = "empty";
      empty.textContent = "No messages yet.";
      nodes.push(empty);
    }
    list.replaceChildren(...nodes);
    for (const time of list.querySelectorAll("time[datetime]")) {  // the viewer's local time, as Slack shows it
      const at = new Date(time.getAttribute("datetime"));
      if (!Number.isNaN(at.getTime())) {
        time.textContent = at.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
      }
    }
    for (const details of list.querySelectorAll("details.thread")) {
      if (openThreads.has(details.dataset.ts)) details.open = true;
    }
    if (atBottom || !version) list.scrollTop = list.scrollHeight;
  }

  document.addEventListener("toggle", (event) => {
    const details = event.target;
    if (!(details instanceof HTMLDetailsElement) || !details.dataset.ts) return;
    if (details.open) openThreads.add(details.dataset.ts);
    else openThreads.delete(details.dataset.ts);
  }, true);

  async function poll() {
    try {
      const query = new URLSearchParams({ channel, since: version });
      const response = await fetch("/_page/state?" + query.toString(), { cache: "no-store" });
      if (response.ok) {
        const state = await response.json();
        if (!state.unchanged) render(state);
        if (!channel && state.channel) channel = state.channel.id;  // the channel first shown stays shown
        version = state.version;
        document.body.dataset.version = version;
        document.body.classList.remove("offline");
      }
    } catch (error) {
      document.body.classList.add("offline");
    } finally {
      window.setTimeout(poll, POLL_MS);
    }
  }

  poll();
})();
