"""The HTML of the demo's run status page (:mod:`.status`): one Jinja template
string with its CSS and JavaScript inline, no front-end build.

Stable element ids for tests: ``ts-<task>`` (``data-ts``), ``job-<task>``,
``jobstatus-<job name>``, ``state-<controller>`` (``data-revision``),
``source-<controller>`` (``data-source`` = ``cache``/``file``),
``disk-<controller>``, ``check-<name>`` (``data-ok``; ``data-by`` = ``page`` or
``event``), ``btn-<action>``, ``live`` (``data-pending``, ``data-events``),
``feed-status`` (``data-state`` = ``connecting``/``live``/``reconnecting``/``off``),
``feed`` and its entries ``inv-<n>`` (``data-task``, ``data-present``,
``data-named``), ``autorefresh`` (the no-JavaScript meta refresh, only while a
job is pending).
"""

from __future__ import annotations

__all__ = ["ERROR_PAGE", "PAGE"]


#: The page's style sheet.
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
 background:#f5f6f8;color:#1d2330}
header{background:#1f3a5f;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:19px;font-weight:600}
header .sub{opacity:.8;font-size:12.5px;margin-top:2px;font-family:ui-monospace,monospace}
main{max-width:1180px;margin:0 auto;padding:16px 24px;display:grid;
 grid-template-columns:1fr 1fr;gap:16px}
section{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:12px 16px}
section.wide{grid-column:1/-1}
h2{font-size:14px;margin:0 0 8px;text-transform:uppercase;letter-spacing:.04em;color:#4a5568}
table{border-collapse:collapse;width:100%}
td,th{padding:4px 6px;border-bottom:1px solid #eef0f3;text-align:left;vertical-align:top}
th{font-weight:600;color:#4a5568;font-size:12.5px}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
.muted{color:#8a94a6}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;
 white-space:nowrap}
.queued,.scheduled,.deferred{background:#e2e8f0;color:#2d3748}
.started{background:#fef3c7;color:#92400e}
.finished{background:#d1fae5;color:#065f46}
.failed,.stopped,.canceled,.expired{background:#fee2e2;color:#991b1b}
.cache{background:#dbeafe;color:#1e40af}
.file{background:#dcfce7;color:#166534}
.missing,.stale{background:#fee2e2;color:#991b1b}
.actions{display:flex;gap:8px;flex-wrap:wrap;align-items:center}
.actions form{margin:0}
button{font:inherit;padding:6px 14px;border-radius:6px;border:1px solid #1f3a5f;background:#1f3a5f;
 color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#1f3a5f}
.checks{display:flex;flex-wrap:wrap;gap:6px}
.check{padding:2px 9px;border-radius:10px;font-size:12.5px;border:1px solid #dde1e7}
.check.ok{background:#d1fae5;border-color:#a7f3d0}
.msg{margin-left:auto;color:#4a5568}
#feed{list-style:none;margin:0;padding:0}
.inv{border-left:3px solid #1f3a5f;padding:4px 10px;margin:0 0 10px}
.inv-keys{margin:4px 0;padding-left:18px}
.inv-keys li{margin:1px 0}
.why{margin-left:8px;font-size:12px;color:#6b4e16;background:#fef3c7;border-radius:8px;
 padding:0 6px}
.why.direct{color:#1e40af;background:#dbeafe}
#feed-status[data-state=live]{color:#065f46}
"""

#: The page's script: in-place refresh while a job runs, background buttons,
#: and the live invalidation feed (Server-Sent Events from :mod:`.events`).
_JS = r"""
(function () {
  "use strict";
  const live = document.getElementById("live");
  const eventsOn = live.dataset.events === "on";
  // Parts of the page a refresh replaces; with events on, the preflight pills
  // belong to the event stream (each event carries the fresh checklist).
  const parts = ["msg", "tasks", "jobs", "controllers"].concat(eventsOn ? [] : ["checks"]);
  let generation = 0;
  let timer = null;

  function swap(doc) {
    for (const id of parts) {
      const now = document.getElementById(id);
      const next = doc.getElementById(id);
      if (now && next) { now.replaceWith(next); }
    }
    const l = doc.getElementById("live");
    live.dataset.pending = l ? l.dataset.pending : "false";
    clearTimeout(timer);
    if (live.dataset.pending === "true") { timer = setTimeout(refresh, 1000); }
  }

  async function refresh() {
    const started = generation;
    try {
      const reply = await fetch(location.pathname, {cache: "no-store"});
      const html = await reply.text();
      if (started !== generation) { return refresh(); }  // an event came: read again
      swap(new DOMParser().parseFromString(html, "text/html"));
    } catch (e) {
      clearTimeout(timer);
      timer = setTimeout(refresh, 2000);
    }
  }

  // The buttons post without leaving the page (the feed stays); without
  // JavaScript they are plain forms.
  document.addEventListener("submit", async function (ev) {
    const form = ev.target;
    if (!form.matches("form[data-async]")) { return; }
    ev.preventDefault();
    const msg = document.getElementById("msg");
    msg.textContent = "…";
    try {
      const reply = await fetch(form.action, {method: "POST", body: new FormData(form)});
      const doc = new DOMParser().parseFromString(await reply.text(), "text/html");
      const error = doc.getElementById("error");
      if (!reply.ok || error) {
        document.getElementById("msg").textContent =
          "error " + reply.status + ": " + (error ? error.textContent : "");
        return;
      }
      generation += 1;
      swap(doc);
    } catch (e) {
      document.getElementById("msg").textContent = "error: " + e;
    }
  });

  const status = document.getElementById("feed-status");
  if (!eventsOn) { return; }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function show(ev, id) {
    const li = el("li", "inv");
    li.id = "inv-" + id;
    li.dataset.task = ev.task;
    li.dataset.present = ev.present === null ? "" : String(ev.present);
    li.dataset.named = String(ev.named);
    const head = el("div", "inv-head");
    head.appendChild(el("span", "muted", ev.time + " "));
    head.appendChild(el("strong", "", ev.emoji + " " + ev.label));
    head.appendChild(el("code", "muted", " " + ev.task));
    const count = ev.present === null
      ? ev.named + " keys named by the rules (presence not known)"
      : ev.present + " of " + ev.named + " keys named by the rules were present";
    head.appendChild(el("span", "inv-count", " — " + count));
    li.appendChild(head);
    li.appendChild(el("div", "muted", "deleted from DB 13, keys under " + ev.wd + "/:"));
    const ul = el("ul", "inv-keys");
    const notCached = [];
    for (const k of ev.keys) {
      if (k.present === false) { notCached.push(k.controller); continue; }
      const item = el("li", "");
      item.dataset.key = k.key;
      item.title = k.key;
      const under = ev.wd + "/";
      item.appendChild(el("code", "", k.key.startsWith(under) ? k.key.slice(under.length) : k.key));
      item.appendChild(el("span", k.why === "direct" ? "why direct" : "why", k.why));
      ul.appendChild(item);
    }
    li.appendChild(ul);
    if (notCached.length) {
      li.appendChild(el("div", "muted",
        "not cached, nothing to delete: " + notCached.join(", ")));
    }
    const feed = document.getElementById("feed");
    feed.insertBefore(li, feed.firstChild);
    const empty = document.getElementById("feed-empty");
    if (empty) { empty.remove(); }
  }

  function pills(checklist) {
    for (const name of Object.keys(checklist)) {
      const pill = document.getElementById("check-" + name);
      if (!pill) { continue; }
      const ok = checklist[name] === true;
      pill.dataset.ok = ok ? "true" : "false";
      pill.dataset.by = "event";
      pill.className = "check" + (ok ? " ok" : "");
      pill.textContent = (ok ? "✓ " : "· ") + name;
    }
  }

  function flip(ev) {
    const gone = new Set(ev.keys.filter(k => k.present !== false).map(k => k.key));
    for (const cell of document.querySelectorAll("[data-key][data-source]")) {
      if (gone.has(cell.dataset.key) && cell.dataset.source === "cache") {
        cell.dataset.source = "file";
        cell.innerHTML = '<span class="badge file">read from file</span>';
      }
    }
  }

  const source = new EventSource(live.dataset.eventsUrl);
  source.addEventListener("ready", function () {
    status.dataset.state = "live";
    status.textContent = "live: listening for invalidation events";
  });
  source.addEventListener("invalidation", function (m) {
    const ev = JSON.parse(m.data);
    generation += 1;
    show(ev, m.lastEventId);
    pills(ev.checklist);
    flip(ev);
    refresh();
  });
  source.onerror = function () {
    status.dataset.state = "reconnecting";
    status.textContent = "reconnecting…";
  };
})();
"""

#: The page (a Jinja template): ``s`` is a ``RunStatus``, ``config`` the run's
#: config, ``actions`` the buttons, ``message`` the flash text, ``events`` on/off.
PAGE = (
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ s.runid }} · redisprep demo</title>
{% if s.pending %}<noscript><meta id="autorefresh" http-equiv="refresh" content="1; url={{
 url_for('status.run_status', runid=s.runid, config=config) }}"></noscript>{% endif %}
<style>"""
    + _CSS
    + """</style></head>
<body>
<header><h1>Run {{ s.runid }} <span class="muted">/ {{ config }}</span></h1>
<div class="sub">{{ s.wd }}</div></header>
<div id="live" hidden data-pending="{{ 'true' if s.pending else 'false' }}"
 data-events="{{ 'on' if events else 'off' }}"
 data-events-url="{{ url_for('events.run_events', runid=s.runid, config=config) }}"></div>
<main>
<section class="wide"><div class="actions">
{% for action, spec in actions.items() %}
<form method="post" data-async action="{{ url_for('status.run_action', runid=s.runid,
 config=config, action=action) }}"><button id="btn-{{ action }}" type="submit">{{ spec[0] }}
</button></form>
{% endfor %}
<form method="post" data-async action="{{ url_for('status.run_action', runid=s.runid,
 config=config, action='warm_caches') }}"><button id="btn-warm_caches" class="secondary"
 type="submit">Warm caches</button></form>
<span class="msg" id="msg">{% if s.pending %}job running — refreshing every second{% elif message
 %}{{ message }}{% endif %}</span>
</div></section>

<section id="tasks"><h2>Tasks</h2>
<table><tr><th>task</th><th>timestamp</th><th>job</th></tr>
{% for t in s.tasks %}<tr>
<td>{{ t.emoji }} {{ t.label }} <code class="muted">{{ t.task }}</code></td>
<td id="ts-{{ t.task }}" data-ts="{{ t.timestamp if t.timestamp is not none else '' }}">
{{ t.when }}</td>
<td id="job-{{ t.task }}">{% if t.job %}<span class="badge {{ t.job.status }}">
{{ t.job.label }}</span>{% else %}<span class="muted">—</span>{% endif %}</td>
</tr>{% endfor %}
</table>
<p class="muted">{{ s.other_tasks }} other tasks have no timestamp.</p>
</section>

<section><h2>RQ jobs</h2>
<div id="jobs">{% if s.jobs %}<table><tr><th>name</th><th>job id</th><th>status</th></tr>
{% for j in s.jobs %}<tr><td><code>{{ j.name }}</code></td><td><code>{{ j.job_id[:12] }}</code></td>
<td id="jobstatus-{{ j.name }}"><span class="badge {{ j.status }}">{{ j.label }}</span>
{% if j.error %}<div class="muted">{{ j.error }}</div>{% endif %}</td></tr>{% endfor %}
</table>{% else %}<p class="muted">No job recorded yet: press a button.</p>{% endif %}</div>
<h2 style="margin-top:14px">Preflight</h2>
<div class="checks" id="checks">{% for name, ok in s.checklist.items() %}
<span id="check-{{ name }}" data-ok="{{ 'true' if ok else 'false' }}" data-by="page"
 class="check{{ ' ok' if ok else '' }}">{{ '✓' if ok else '·' }} {{ name }}</span>
{% endfor %}</div>
</section>

<section class="wide" id="feed-panel"><h2>Invalidations</h2>
{% if events %}<p id="feed-status" data-state="connecting" class="muted">connecting…</p>
<ol id="feed"><li id="feed-empty" class="muted">No invalidation since this page was opened: the
next job to finish shows here, with every cache key it deleted and why.</li></ol>
{% else %}<p id="feed-status" data-state="off">Invalidation events are <strong>off</strong>, so
there is no live feed. Turn them on: start the demo without <code>--no-events</code>, or set
<code>REDISPREP_EVENTS=true</code> (or call <code>redisprep.configure(events=True)</code>) in the
web app and in every RQ worker.</p><ol id="feed"></ol>{% endif %}
</section>

<section class="wide" id="controllers"><h2>Controllers (as a controller reads them: DB 13 cache,
else the .nodb file)</h2>
<table><tr><th>controller</th><th>source</th><th>state read</th><th>on disk</th></tr>
{% for c in s.controllers %}<tr>
<td><code>{{ c.name }}.nodb</code></td>
<td id="source-{{ c.name }}" data-source="{{ c.source }}" data-key="{{ c.key }}">{% if
 c.source == 'cache' %}<span class="badge cache">served from cache</span>{% elif
 c.source == 'file' %}<span class="badge file">read from file</span>{% else
 %}<span class="badge missing">missing</span>{% endif %}
{% if c.stale %} <span class="badge stale">stale</span>{% endif %}</td>
<td id="state-{{ c.name }}" data-revision="{{ c.revision if c.revision is not none else '' }}">
<code>{{ c.summary }}</code></td>
<td id="disk-{{ c.name }}" data-revision="{{ c.disk_revision if c.disk_revision is not none
 else '' }}"><code>rev {{ c.disk_revision }}</code></td>
</tr>{% endfor %}
</table>
<p class="muted">The page does not refill the cache on a miss, so "read from file" marks exactly
the caches invalidation removed; "Warm caches" reads every controller like wepppy's pages do.</p>
</section>
</main>
<script>{% raw %}"""
    + _JS
    + """{% endraw %}</script>
</body></html>
"""
)

#: An error page: ``status`` and ``message``.
ERROR_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Error {{ status }}
</title></head><body><h1>Error {{ status }}</h1><p id="error">{{ message }}</p></body></html>
"""
