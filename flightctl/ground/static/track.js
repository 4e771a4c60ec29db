// Live updates for this page's order only: its own event stream, nothing else. The server sends each status
// already in words (the catalogue's) and in the site's local time; this only puts them on the page, inside
// the live region that screen readers announce.
(() => {
  const list = document.getElementById("statuses");
  const note = document.getElementById("live-note");
  if (note) note.hidden = false;
  const show = (id, text) => {
    const element = document.getElementById(id);
    element.textContent = text || "";
    element.hidden = !text;
  };
  const source = new EventSource(window.location.pathname.replace(/\/$/, "") + "/events");
  source.addEventListener("status", (event) => {
    const s = JSON.parse(event.data);
    if (!list.querySelector(`[data-seq="${s.seq}"]`)) {
      const item = document.createElement("li");
      item.className = "status";
      item.dataset.seq = s.seq;
      const when = document.createElement("time");
      when.className = "when";
      when.dateTime = s.datetime;
      when.textContent = s.when;
      const what = document.createElement("span");
      what.className = "what";
      what.textContent = s.message;
      item.append(when, " ", what);
      list.appendChild(item);
    }
    const current = document.getElementById("current");
    current.textContent = s.headline;
    current.dataset.status = s.status;
    current.dataset.situation = s.situation;
    current.closest("section").className = "now " + s.situation;
    show("detail", s.detail);
    show("eta", s.eta);
    show("action", s.action);
    if (s.final) source.close();
  });
})();
