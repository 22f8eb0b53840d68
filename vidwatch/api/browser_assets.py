"""The results browser's script and style, served from the package (no CDN: often nothing outside is reachable).

Plain JavaScript over the JSON API (``/objects``, ``/videos``, ``/videos/{id}``): every value
from the API goes into the page as text (``textContent``), ids into URLs through
``encodeURIComponent``: a file or camera name can never become markup.
"""

from __future__ import annotations

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.2em 2em; color: #111; background: #fafafa; }
h1 { font-size: 1.4em; margin: 0 0 .2em; } h2 { font-size: 1.1em; margin: 1.2em 0 .4em; }
a { color: #1d4ed8; } .muted { color: #6b7280; } .bad { color: #b91c1c; }
form.search { display: flex; flex-wrap: wrap; gap: 10px; align-items: end; background: #fff;
  border: 1px solid #e5e7eb; border-radius: 6px; padding: 10px 14px; }
form.search label { display: flex; flex-direction: column; font-size: 12px; color: #374151; }
form.search input, form.search select { font: inherit; padding: 3px 6px; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 10px; }
.obj { background: #fff; border: 1px solid #e5e7eb; border-radius: 6px; padding: 6px; width: 170px; }
.obj.selected { outline: 2px solid #2563eb; }
.obj img { width: 100%; height: 120px; object-fit: contain; background: #111; border-radius: 3px; }
.obj .noimg { height: 120px; display: flex; align-items: center; justify-content: center; background: #e5e7eb; }
.obj b { text-transform: capitalize; }
table { border-collapse: collapse; background: #fff; margin-top: 10px; }
th, td { text-align: left; padding: 4px 10px; border-bottom: 1px solid #e5e7eb; }
th { background: #f3f4f6; }
button { font: inherit; cursor: pointer; }
video { max-width: 100%; width: 720px; background: #000; display: block; }
img.timeline { max-width: 100%; display: block; margin: 6px 0; background: #fff; }
.facts span { margin-right: 1.2em; }
"""

SCRIPT = r"""
"use strict";
const $ = (sel) => document.querySelector(sel);
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}
function when(ts) {
  if (ts === null || ts === undefined) return "—";
  return new Date(ts * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}
function secs(s) {
  if (s === null || s === undefined) return "?";
  const m = Math.floor(s / 60), r = s - m * 60;
  return m ? `${m}:${r.toFixed(1).padStart(4, "0")}` : `${r.toFixed(1)} s`;
}
async function getJSON(url) {
  const response = await fetch(url, {cache: "no-store"});
  const body = await response.json().catch(() => ({error: response.statusText}));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}
const vid = (id) => encodeURIComponent(id);

// ---- search page ---------------------------------------------------------------------------------
const FIELDS = ["what", "camera", "label", "since", "until", "limit"];
function toQueryTime(value) {  // datetime-local (the browser's time zone) -> ISO 8601 UTC
  if (!value) return "";
  const date = new Date(value);
  return isNaN(date) ? value : date.toISOString();
}
function fromQueryTime(value) {  // ISO / epoch -> datetime-local in the browser's time zone
  if (!value) return "";
  const date = /^\d+(\.\d+)?$/.test(value) ? new Date(parseFloat(value) * 1000) : new Date(value);
  if (isNaN(date)) return "";
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 19);
}
function searchParams() {
  const form = $("#search"), params = new URLSearchParams();
  for (const name of ["camera", "label"]) if (form[name].value.trim()) params.set(name, form[name].value.trim());
  for (const name of ["since", "until"]) if (form[name].value) params.set(name, toQueryTime(form[name].value));
  return params;
}
function objectCard(o) {
  const link = `/browse/videos/${vid(o.video_id)}#object-${o.track}`;
  const image = o.crop ? el("img", {src: o.crop, alt: o.label, loading: "lazy"})
    : el("div", {class: "noimg muted"}, "no crop");
  return el("div", {class: "obj", dataset: {object: o.object_id, label: o.label, camera: o.camera}},
    el("a", {href: link}, image),
    el("div", {}, el("b", {}, o.label), " · ", o.camera),
    el("div", {class: "muted"}, when(o.start_ts)),
    el("div", {class: "muted"}, `${secs(o.end_pts - o.start_pts)}`,
      o.score !== null ? ` · ${(o.score * 100).toFixed(0)} %` : ""),
    el("div", {}, el("a", {href: `/browse/videos/${vid(o.video_id)}#play=object-${o.track}`}, "▶ play"),
      " · ", el("a", {href: link}, "video")));
}
function videoRow(v) {
  return el("tr", {class: "video", dataset: {video: v.video_id}},
    el("td", {}, el("a", {href: `/browse/videos/${vid(v.video_id)}`}, v.video_id)),
    el("td", {}, v.camera), el("td", {}, when(v.start_ts)), el("td", {}, secs(v.duration_s)),
    el("td", {}, v.state), el("td", {}, el("code", {}, v.path)));
}
async function runSearch(cursor) {
  const form = $("#search"), what = form.what.value, params = searchParams();
  params.set("limit", form.limit.value || "24");
  if (cursor) params.set("cursor", cursor);
  const results = $("#results"), status = $("#status");
  if (!cursor) {
    results.replaceChildren();
    const shown = new URLSearchParams(params); shown.set("what", what);
    history.replaceState(null, "", `?${shown}`);
  }
  $("#more").hidden = true;
  status.textContent = "searching…";
  try {
    const body = await getJSON(`/${what}?${params}`);
    if (what === "objects") {
      let grid = results.querySelector(".grid");
      if (!grid) { grid = el("div", {class: "grid"}); results.append(grid); }
      for (const o of body.objects) grid.append(objectCard(o));
    } else {
      let table = results.querySelector("table");
      if (!table) {
        const heads = ["video", "camera", "recorded", "duration", "state", "path"];
        table = el("table", {}, el("tr", {}, ...heads.map((h) => el("th", {}, h))));
        results.append(table);
      }
      for (const v of body.videos) table.append(videoRow(v));
    }
    const shown = results.querySelectorAll(what === "objects" ? ".obj" : "tr.video").length;
    status.textContent = `${shown} ${what}` + (body.next_cursor ? " (more below)" : "");
    document.body.dataset.results = String(shown);
    if (body.next_cursor) { $("#more").hidden = false; $("#more").dataset.cursor = body.next_cursor; }
  } catch (err) {
    status.textContent = `error: ${err.message}`;
    status.className = "bad";
  }
  document.body.dataset.searched = "yes";
}
function initSearch() {
  const form = $("#search"), query = new URLSearchParams(location.search);
  for (const name of FIELDS) {
    const value = query.get(name);
    if (value === null) continue;
    form[name].value = (name === "since" || name === "until") ? fromQueryTime(value) : value;
  }
  form.addEventListener("submit", (event) => { event.preventDefault(); runSearch(null); });
  $("#more").addEventListener("click", () => runSearch($("#more").dataset.cursor));
  runSearch(null);
}

// ---- video page ----------------------------------------------------------------------------------
let clip = null;  // {kind, url, spans}
let stopAt = null;
function clipTime(pts) {  // video time -> time in the clip (the condensed clip keeps only some spans)
  if (!clip || clip.kind !== "condensed") return pts;
  for (const [cs, ce, vs, ve] of clip.spans) if (pts <= ve) return cs + Math.max(0, pts - vs);
  return clip.spans.length ? clip.spans[clip.spans.length - 1][1] : pts;
}
function playSpan(start, end, what) {
  const player = $("#player");
  if (!player) return;
  const from = clipTime(start), to = clipTime(end);
  stopAt = Math.max(to, from + 0.5);
  document.body.dataset.playingWhat = what;
  const go = () => {
    player.currentTime = from;
    player.play().catch((err) => { document.body.dataset.playError = String(err); });
  };
  if (player.readyState >= 1) go(); else player.addEventListener("loadedmetadata", go, {once: true});
}
async function initVideo(videoId) {
  let body;
  try { body = await getJSON(`/videos/${vid(videoId)}`); } catch (err) {
    $("#video").replaceChildren(el("p", {class: "bad"}, `error: ${err.message}`)); return;
  }
  const record = body.record, summary = body.summary || {};
  clip = body.clip;
  $("#title").textContent = `${record.camera || "default"} · ${when(parseFloat(record.start_ts))}`;
  const labels = Object.entries(summary.labels || {}).map(([name, s]) => `${name} ${s.tracks ?? ""}`.trim());
  const out = [el("div", {class: "facts"},
    el("span", {}, `state ${record.state}`),
    el("span", {}, `duration ${secs(parseFloat(summary.duration ?? record.probe_duration_s))}`),
    el("span", {}, `seen: ${labels.join(", ") || "nothing"}`), el("span", {}, el("code", {}, record.path || "")))];
  if (body.timeline) out.push(el("img", {class: "timeline", src: body.timeline, alt: "timeline"}));
  if (clip) {
    const player = el("video", {id: "player", controls: "", muted: "", playsinline: "", preload: "metadata",
                                src: clip.url});
    player.muted = true;
    player.addEventListener("timeupdate", () => {
      document.body.dataset.currentTime = player.currentTime.toFixed(2);
      if (stopAt !== null && player.currentTime >= stopAt) { player.pause(); stopAt = null; }
    });
    player.addEventListener("playing", () => { document.body.dataset.played = "yes"; });
    const about = clip.kind === "spool" ? "the analysed copy" : "condensed clip: only the active parts";
    out.push(player, el("div", {class: "muted"}, about));
  } else {
    out.push(el("p", {class: "muted"},
      "no clip is kept of this video (the spooled copy is gone and no condensed clip was made)"));
  }
  const activity = summary.activity || [];
  out.push(el("h2", {}, `Activity (${activity.length})`));
  const acts = el("div", {});
  activity.forEach(([start, end], i) => acts.append(el("div", {class: "activity", dataset: {activity: String(i)}},
    clip ? el("button", {type: "button", onclick: () => playSpan(start, end, `activity-${i}`)}, "▶") : "",
    ` ${secs(start)} – ${secs(end)}`)));
  out.push(acts);
  out.push(el("h2", {}, `Objects (${body.objects.length})`));
  const grid = el("div", {class: "grid"});
  for (const o of body.objects) {
    const image = o.crop ? el("img", {src: o.crop, alt: o.label}) : el("div", {class: "noimg muted"}, "no crop");
    grid.append(el("div", {class: "obj", id: `object-${o.track}`, dataset: {object: o.object_id, label: o.label}},
      image, el("div", {}, el("b", {}, o.label), ` #${o.track}`),
      el("div", {class: "muted"}, `${secs(o.start_pts)} – ${secs(o.end_pts)}`),
      el("div", {class: "muted"}, when(o.start_ts)),
      clip ? el("button", {type: "button", onclick: () => playSpan(o.start_pts, o.end_pts, `object-${o.track}`)},
        "▶ play") : ""));
  }
  out.push(body.objects.length ? grid : el("p", {class: "muted"}, "no objects (people, cars, …) in this video"));
  $("#video").replaceChildren(...out);
  document.body.dataset.loaded = "yes";
  const hash = decodeURIComponent(location.hash.slice(1));
  const target = hash.startsWith("play=") ? hash.slice(5) : hash;
  const card = target && document.getElementById(target);
  if (card) { card.classList.add("selected"); card.scrollIntoView(); }
  if (hash.startsWith("play=")) {
    const [kind, n] = target.split("-");
    if (kind === "object") {
      const o = body.objects.find((x) => String(x.track) === n);
      if (o) playSpan(o.start_pts, o.end_pts, target);
    } else if (kind === "activity" && activity[parseInt(n)]) {
      playSpan(activity[parseInt(n)][0], activity[parseInt(n)][1], target);
    }
  }
}
"""
