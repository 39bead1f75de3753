// callvault: the docked player, page navigation that keeps it playing, and the call page.
//
// Navigation (REQUIREMENTS D6): same-origin link clicks and GET form submits are fetched
// with the header X-Callvault-Partial: 1; the server answers only what goes inside
// <main>, led by <meta name="callvault-title">, and we swap #main, the title and the
// history entry. The <audio> element lives outside #main and is never touched, so
// playback goes on. Anything unexpected (an error status, a redirect, not a partial
// page) falls back to a normal navigation. POST forms (log out) navigate normally.
//
// No framework, no build step, nothing from the internet.
"use strict";

(() => {
  const PARTIAL_HEADER = "X-Callvault-Partial";
  const main = document.getElementById("main");
  const playerBox = document.getElementById("player");
  const audio = document.getElementById("player-audio");

  // ---------------------------------------------------------------- helpers

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function clock(seconds) {
    if (!Number.isFinite(seconds) || seconds < 0) seconds = 0;
    const whole = Math.floor(seconds);
    const h = Math.floor(whole / 3600);
    const m = Math.floor((whole % 3600) / 60);
    const s = String(whole % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
  }

  async function api(method, url, body) {
    const response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        "Content-Type": "application/json",
        "X-CSRF-Token": csrfToken(),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const detail = data && (data.detail || data.title);
      throw new Error(detail || `${response.status} ${response.statusText}`);
    }
    return data;
  }

  function announce(root, message, isError) {
    const box = root.querySelector("[data-status]") || document.querySelector("main [data-status]");
    if (!box) return;
    box.textContent = message;
    box.classList.toggle("error", Boolean(isError));
  }

  // ---------------------------------------------------------------- the player

  // What is loaded: {src, title, download, recording, duration}; null before the first play.
  let current = null;

  const player = {
    toggle: document.getElementById("player-toggle"),
    back: document.getElementById("player-back"),
    forward: document.getElementById("player-forward"),
    title: document.getElementById("player-title"),
    time: document.getElementById("player-time"),
    seek: document.getElementById("player-seek"),
    duration: document.getElementById("player-duration"),
    speed: document.getElementById("player-speed"),
    mute: document.getElementById("player-mute"),
    volume: document.getElementById("player-volume"),
    download: document.getElementById("player-download"),
  };
  let dragging = false;

  function duration() {
    // Chromium knows an Ogg file's length once it can range-request its end; until
    // then the length the server stored stands in.
    if (Number.isFinite(audio.duration) && audio.duration > 0) return audio.duration;
    return current && current.duration ? current.duration : 0;
  }

  // Everything a play button, a waveform or a timeline carries about its recording.
  function recordingInfo(el) {
    return {
      src: el.dataset.src,
      title: el.dataset.title || "Recording",
      download: el.dataset.download || "",
      recording: el.dataset.recording || "",
      duration: parseFloat(el.dataset.duration || "0") || 0,
    };
  }

  // ``source``: an object URL of audio fetched already (an encrypted recording's).
  function load(info, source) {
    current = info;
    audio.src = source || info.src;
    if (blobUrl && blobUrl !== source) {
      URL.revokeObjectURL(blobUrl);
      blobUrl = null;
    }
    audio.playbackRate = parseFloat(player.speed.value) || 1;
    player.title.textContent = info.title;
    player.download.href = source || info.download || info.src;
    player.download.hidden = !info.download;
    playerBox.hidden = false;
    refreshPlayer();
  }

  // ---------------------------------------------------------------- encrypted recordings

  // A recording whose private key needs a passphrase: ask for it, fetch the audio once
  // with it in the X-Key-Passphrase header, and play it from an object URL (the browser
  // keeps the audio in memory). The passphrase serves that one request and is dropped.
  const keyFacts = new Map(); // recording id -> {passphrase, decryptable}
  let blobUrl = null;

  async function recordingKey(info) {
    if (!info.recording) return { passphrase: false, decryptable: true };
    if (!keyFacts.has(info.recording)) {
      try {
        const data = await api("GET", `/api/v1/recordings/${encodeURIComponent(info.recording)}`);
        keyFacts.set(info.recording, {
          passphrase: Boolean(data && data.passphrase_required),
          decryptable: !data || data.decryptable !== false,
        });
      } catch (_) {
        return { passphrase: false, decryptable: true }; // the player says what fails
      }
    }
    return keyFacts.get(info.recording);
  }

  function askPassphrase(title) {
    return new Promise((resolve) => {
      const dialog = document.createElement("dialog");
      dialog.className = "passphrase-dialog";
      dialog.innerHTML =
        '<form method="dialog"><p></p><label>Passphrase of the recording\'s key ' +
        '<input type="password" autocomplete="off" required></label>' +
        '<div class="actions"><button value="ok">Play</button> ' +
        '<button value="cancel" formnovalidate>Cancel</button></div></form>';
      dialog.querySelector("p").textContent = `${title} is encrypted.`;
      const input = dialog.querySelector("input");
      dialog.addEventListener("close", () => {
        const given = dialog.returnValue === "ok" ? input.value : null;
        input.value = "";
        dialog.remove();
        resolve(given);
      });
      document.body.append(dialog);
      dialog.showModal();
      input.focus();
    });
  }

  function utf8Bytes(text) {
    return Array.from(new TextEncoder().encode(text), (b) => String.fromCharCode(b)).join("");
  }

  async function unlockedSource(info) {
    const passphrase = await askPassphrase(info.title);
    if (passphrase === null) return null;
    const response = await fetch(info.src, {
      credentials: "same-origin",
      // Header values are bytes: send the passphrase's UTF-8 bytes (the server reads them
      // as UTF-8), so a passphrase with "ż" or "ж" works as typed.
      headers: { "X-Key-Passphrase": utf8Bytes(passphrase) },
    });
    if (!response.ok) {
      let detail = `${response.status} ${response.statusText}`;
      try {
        detail = (await response.json()).detail || detail;
      } catch (_) {
        // not a problem document
      }
      throw new Error(detail);
    }
    const url = URL.createObjectURL(await response.blob());
    if (blobUrl) URL.revokeObjectURL(blobUrl);
    blobUrl = url;
    return url;
  }

  // Play ``info`` from ``seconds`` (or from where it is when null), loading it first
  // when another recording is in the player.
  async function playFrom(info, seconds) {
    if (!audio || !info || !info.src) return;
    if (!current || current.src !== info.src) {
      const key = await recordingKey(info);
      let source = null;
      if (!key.decryptable) {
        announce(document, `${info.title} is encrypted and its private key is not in the system: download the .gpg file`, true);
        return;
      }
      if (key.passphrase) {
        try {
          source = await unlockedSource(info);
        } catch (error) {
          announce(document, `Could not play ${info.title}: ${error.message}`, true);
          return;
        }
        if (source === null) return;
      }
      load(info, source);
    }
    const start = () => {
      if (!current || current.src !== info.src) return; // another was chosen meanwhile
      if (seconds !== null && seconds !== undefined) {
        const end = duration();
        audio.currentTime = Math.max(0, end ? Math.min(seconds, end - 0.05) : seconds);
      }
      audio.play().catch(() => refreshPlayer());
    };
    if (audio.readyState >= 1) start();
    else audio.addEventListener("loadedmetadata", start, { once: true });
  }

  function togglePlay() {
    if (!current) return;
    if (audio.paused) audio.play().catch(() => refreshPlayer());
    else audio.pause();
  }

  function skip(by) {
    if (!current) return;
    const end = duration();
    audio.currentTime = Math.max(0, end ? Math.min(audio.currentTime + by, end) : audio.currentTime + by);
  }

  function refreshPlayer() {
    if (!player.toggle) return;
    const end = duration();
    const playing = !audio.paused && !audio.ended;
    player.toggle.textContent = playing ? "❚❚" : "▶";
    player.toggle.setAttribute("aria-label", playing ? "Pause" : "Play");
    player.time.textContent = clock(audio.currentTime);
    player.duration.textContent = clock(end);
    if (!dragging) player.seek.value = end ? String(Math.round((audio.currentTime / end) * 1000)) : "0";
    player.seek.setAttribute("aria-valuetext", `${clock(audio.currentTime)} of ${clock(end)}`);
    player.mute.textContent = audio.muted ? "Unmute" : "Mute";
    for (const button of document.querySelectorAll("[data-play]")) {
      const mine = current && button.dataset.src === current.src;
      button.classList.toggle("playing", Boolean(mine && playing));
      button.setAttribute("aria-pressed", String(Boolean(mine && playing)));
    }
    drawProgress();
  }

  if (audio) {
    for (const name of ["play", "pause", "ended", "timeupdate", "durationchange", "volumechange", "seeked", "loadedmetadata"]) {
      audio.addEventListener(name, refreshPlayer);
    }
    audio.addEventListener("error", () => {
      player.title.textContent = `${current ? current.title : "Recording"}: could not be played`;
    });
    player.toggle.addEventListener("click", togglePlay);
    player.back.addEventListener("click", () => skip(-10));
    player.forward.addEventListener("click", () => skip(10));
    player.seek.addEventListener("input", () => {
      dragging = true;
      const end = duration();
      player.time.textContent = clock((Number(player.seek.value) / 1000) * end);
    });
    player.seek.addEventListener("change", () => {
      dragging = false;
      const end = duration();
      if (current && end) audio.currentTime = (Number(player.seek.value) / 1000) * end;
    });
    player.speed.addEventListener("change", () => {
      audio.playbackRate = parseFloat(player.speed.value) || 1;
    });
    player.volume.addEventListener("input", () => {
      audio.volume = Number(player.volume.value) / 100;
      if (audio.volume > 0) audio.muted = false;
    });
    player.mute.addEventListener("click", () => {
      audio.muted = !audio.muted;
    });
    // Keyboard: "k" or space toggles, arrows skip 5 s, while the focus is in the player
    // (and not on a control that uses those keys itself).
    playerBox.addEventListener("keydown", (event) => {
      const tag = event.target.tagName;
      if (tag === "INPUT" || tag === "SELECT") return;
      if (event.key === "k" || (event.key === " " && tag !== "BUTTON" && tag !== "A")) {
        event.preventDefault();
        togglePlay();
      } else if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
        event.preventDefault();
        skip(event.key === "ArrowLeft" ? -5 : 5);
      }
    });
  }

  // ---------------------------------------------------------------- waveforms

  // recording id -> {channels: [[0..255]], perSecond, duration, analysis}
  const peaksByRecording = new Map();

  function laneCanvases(box) {
    return Array.from(box.querySelectorAll("canvas"));
  }

  function drawWaveform(box) {
    const data = peaksByRecording.get(box.dataset.recording);
    if (!data) return;
    const end = data.duration || parseFloat(box.dataset.duration || "0") || 0;
    const mine = current && current.src === box.dataset.src;
    const progress = mine && end ? Math.min(1, audio.currentTime / end) : 0;
    const canvases = laneCanvases(box);
    canvases.forEach((canvas, channel) => {
      const points = data.channels[channel] || [];
      const ratio = window.devicePixelRatio || 1;
      const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
      const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
      if (canvas.width !== width) canvas.width = width;
      if (canvas.height !== height) canvas.height = height;
      const g = canvas.getContext("2d");
      if (!g) return;
      const style = getComputedStyle(box);
      g.clearRect(0, 0, width, height);
      // Paused stretches (hold, inactive) shaded behind the peaks.
      g.fillStyle = style.getPropertyValue("--paused").trim() || "#eee";
      for (const [from, to] of (data.analysis && data.analysis.paused) || []) {
        if (!end) break;
        g.fillRect((from / end) * width, 0, Math.max(1, ((to - from) / end) * width), height);
      }
      const played = style.getPropertyValue("--played").trim() || "#2563eb";
      const rest = style.getPropertyValue("--wave").trim() || "#94a3b8";
      const n = points.length;
      const middle = height / 2;
      for (let x = 0; x < width && n; x += 1) {
        const from = Math.floor((x / width) * n);
        const to = Math.max(from + 1, Math.floor(((x + 1) / width) * n));
        let peak = 0;
        for (let i = from; i < to && i < n; i += 1) peak = Math.max(peak, points[i]);
        const half = Math.max(0.5, (peak / 255) * middle);
        g.fillStyle = x / width < progress ? played : rest;
        g.fillRect(x, middle - half, 1, half * 2);
      }
      // DTMF digits as ticks on the lane of the channel that sent them.
      g.fillStyle = style.getPropertyValue("--dtmf").trim() || "#b45309";
      for (const mark of (data.analysis && data.analysis.dtmf) || []) {
        if (!end || (mark.channel !== undefined && mark.channel !== null && mark.channel !== channel)) continue;
        g.fillRect((mark.at / end) * width - ratio, 0, 2 * ratio, height);
      }
      if (mine) {
        g.fillStyle = style.getPropertyValue("--playhead").trim() || "#dc2626";
        g.fillRect(progress * width - ratio / 2, 0, Math.max(1, ratio), height);
      }
    });
  }

  function drawProgress() {
    for (const box of document.querySelectorAll(".waveform[data-recording]")) drawWaveform(box);
    for (const timeline of document.querySelectorAll(".timeline")) placePlayhead(timeline);
  }

  async function loadWaveform(box) {
    const id = box.dataset.recording;
    if (!peaksByRecording.has(id)) {
      try {
        const data = await api("GET", `/api/v1/recordings/${encodeURIComponent(id)}`);
        const peaks = (data && data.peaks) || {};
        peaksByRecording.set(id, {
          channels: peaks.channels || [],
          perSecond: peaks.per_second || 0,
          duration: data.duration_s || 0,
          analysis: data.analysis || {},
        });
      } catch (error) {
        box.classList.add("unavailable");
        const note = box.querySelector(".waveform-note");
        if (note) note.textContent = `No waveform: ${error.message}`;
        return;
      }
    }
    const data = peaksByRecording.get(id);
    if (!data.channels.length) {
      const note = box.querySelector(".waveform-note");
      if (note) note.textContent = "No waveform stored for this recording.";
    }
    // A lane per channel: the page drew one per channel it knew of; add any missing.
    const lanes = box.querySelector(".lanes") || box;
    while (laneCanvases(box).length < data.channels.length) {
      const lane = document.createElement("div");
      lane.className = "lane";
      const label = document.createElement("span");
      label.className = "lane-label";
      label.textContent = `Channel ${laneCanvases(box).length + 1}`;
      const canvas = document.createElement("canvas");
      canvas.setAttribute("aria-hidden", "true");
      lane.append(label, canvas);
      lanes.append(lane);
    }
    if (data.duration && !box.dataset.duration) box.dataset.duration = String(data.duration);
    drawWaveform(box);
    box.dataset.drawn = "";
  }

  function waveformSeconds(box, clientX) {
    const rect = (box.querySelector("canvas") || box).getBoundingClientRect();
    const fraction = Math.min(1, Math.max(0, (clientX - rect.left) / rect.width));
    const data = peaksByRecording.get(box.dataset.recording);
    const end = (data && data.duration) || parseFloat(box.dataset.duration || "0") || 0;
    return fraction * end;
  }

  // ---------------------------------------------------------------- the call timeline

  function placePlayhead(timeline) {
    const head = timeline.querySelector(".tl-playhead");
    if (!head) return;
    const total = parseFloat(timeline.dataset.duration || "0");
    let offset = null;
    if (current && total) {
      if (timeline.dataset.src === current.src) offset = parseFloat(timeline.dataset.offset || "0");
      for (const segment of timeline.querySelectorAll(".tl-segment")) {
        if (segment.dataset.src && segment.dataset.src === current.src) {
          offset = parseFloat(segment.dataset.offset || "0");
        }
      }
    }
    head.hidden = offset === null;
    if (offset !== null) head.style.left = `${Math.min(100, ((offset + audio.currentTime) / total) * 100)}%`;
  }

  // Where on the call a click on the timeline points, and what to play there: the whole
  // call's stitched recording when there is one, else the recording of the segment.
  function playTimeline(timeline, event, target) {
    const total = parseFloat(timeline.dataset.duration || "0");
    const track = timeline.querySelector(".tl-track") || timeline;
    const rect = track.getBoundingClientRect();
    const keyboard = event.detail === 0;
    let at = keyboard ? 0 : Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width)) * total;
    if (keyboard && target && target.dataset.offset) at = parseFloat(target.dataset.offset);
    if (timeline.dataset.src) {
      playFrom(recordingInfo(timeline), Math.max(0, at - parseFloat(timeline.dataset.offset || "0")));
      return;
    }
    const segments = Array.from(timeline.querySelectorAll(".tl-segment[data-src]"));
    const chosen =
      (target && target.dataset.src ? target : null) ||
      segments.find((s) => {
        const from = parseFloat(s.dataset.offset || "0");
        return at >= from && at < from + parseFloat(s.dataset.length || "0");
      });
    if (chosen) playFrom(recordingInfo(chosen), Math.max(0, at - parseFloat(chosen.dataset.offset || "0")));
  }

  // ---------------------------------------------------------------- clicks on page parts

  document.addEventListener("click", async (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    const play = target.closest("[data-play]");
    if (play) {
      event.preventDefault();
      if (current && current.src === play.dataset.src) togglePlay();
      else playFrom(recordingInfo(play), 0);
      return;
    }
    const wave = target.closest(".waveform[data-recording]");
    if (wave && target.closest("canvas")) {
      playFrom(recordingInfo(wave), waveformSeconds(wave, event.clientX));
      return;
    }
    const timeline = target.closest(".timeline");
    if (timeline && target.closest(".tl-track")) {
      playTimeline(timeline, event, target.closest(".tl-segment"));
      return;
    }
    const pauseToggle = target.closest("[data-pause-toggle]");
    if (pauseToggle) {
      // T3: pause or resume the recording of the call in progress, then show its state.
      event.preventDefault();
      pauseToggle.disabled = true;
      try {
        await api("POST", pauseToggle.dataset.pauseToggle, {});
        await navigate(new URL(location.href), { push: false, quiet: true, scrollTo: window.scrollY });
      } catch (error) {
        pauseToggle.disabled = false;
        announce(document, `Could not change the recording: ${error.message}`, true);
      }
      return;
    }
    const share = target.closest("[data-share]");
    if (share) {
      event.preventDefault();
      const out = share.parentElement.querySelector(".share-result") || document.querySelector(".share-result");
      share.disabled = true;
      try {
        const made = await api("POST", share.dataset.share, {});
        if (out) {
          const input = out.querySelector("input");
          input.value = made.url;
          const expires = out.querySelector(".share-expires");
          if (expires && made.expires_at) expires.textContent = `expires ${new Date(made.expires_at).toLocaleString()}`;
          out.hidden = false;
          input.focus();
          input.select();
        }
      } catch (error) {
        announce(document, `Could not share: ${error.message}`, true);
      } finally {
        share.disabled = false;
      }
      return;
    }
    const copy = target.closest("[data-copy]");
    if (copy) {
      const input = copy.parentElement.querySelector("input");
      input.select();
      try {
        await navigator.clipboard.writeText(input.value);
      } catch (_) {
        document.execCommand("copy");
      }
      copy.textContent = "Copied";
      return;
    }
    const forget = target.closest("[data-delete-filter]");
    if (forget) {
      event.preventDefault();
      try {
        await api("DELETE", forget.dataset.deleteFilter);
        await navigate(new URL(location.href), { push: false, quiet: true });
      } catch (error) {
        announce(document, `Could not delete the filter: ${error.message}`, true);
      }
    }
  });

  document.addEventListener("keydown", (event) => {
    const wave = event.target instanceof Element ? event.target.closest(".waveform[data-recording]") : null;
    if (!wave || event.target !== wave) return;
    const mine = current && current.src === wave.dataset.src;
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      if (mine) togglePlay();
      else playFrom(recordingInfo(wave), 0);
    } else if (mine && (event.key === "ArrowLeft" || event.key === "ArrowRight")) {
      event.preventDefault();
      skip(event.key === "ArrowLeft" ? -5 : 5);
    }
  });

  window.addEventListener("resize", drawProgress);

  // ---------------------------------------------------------------- navigation

  let navigation = 0; // bumps on every navigation: a late answer for an older one is dropped
  let liveTimer = 0;
  let loadedAt = location.pathname + location.search;

  function navigable(url) {
    return (
      url.origin === location.origin &&
      !url.pathname.startsWith("/api/") &&
      !url.pathname.startsWith("/static/") &&
      !url.pathname.startsWith("/s/") &&
      url.pathname !== "/logout"
    );
  }

  function runScripts(root) {
    // Scripts parsed through a <template> are inert: make fresh ones so they run.
    for (const old of root.querySelectorAll("script")) {
      const fresh = document.createElement("script");
      for (const attribute of old.attributes) fresh.setAttribute(attribute.name, attribute.value);
      fresh.textContent = old.textContent;
      old.replaceWith(fresh);
    }
  }

  function markNavigation() {
    const path = location.pathname;
    for (const link of document.querySelectorAll("header nav a")) {
      const here = path === link.pathname || path.startsWith(`${link.pathname}/`);
      if (here) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  async function navigate(url, { push = true, scrollTo = 0, quiet = false } = {}) {
    const mine = ++navigation;
    try {
      const response = await fetch(url.href, {
        credentials: "same-origin",
        // A partial answer must never be what the HTTP cache later gives a full load.
        cache: "no-store",
        headers: { [PARTIAL_HEADER]: "1", Accept: "text/html" },
      });
      if (mine !== navigation) return;
      const type = response.headers.get("content-type") || "";
      // Redirected (a session that ended goes to the login page) or not HTML: let the
      // browser do it properly.
      if (response.redirected || !type.includes("text/html")) throw new Error("not a page");
      const html = await response.text();
      if (mine !== navigation) return;
      const parsed = document.createElement("template");
      parsed.innerHTML = html;
      const marker = parsed.content.querySelector('meta[name="callvault-title"]');
      if (!marker) throw new Error("not a partial page");
      marker.remove();
      if (push) {
        history.replaceState({ ...(history.state || {}), callvault: true, scrollY: window.scrollY }, "");
        history.pushState({ callvault: true }, "", url.href);
      }
      loadedAt = location.pathname + location.search;
      document.title = marker.content;
      main.replaceChildren(parsed.content);
      runScripts(main);
      markNavigation();
      startPage(main);
      if (!quiet) {
        const anchor = url.hash ? document.getElementById(decodeURIComponent(url.hash.slice(1))) : null;
        if (anchor) anchor.scrollIntoView();
        else window.scrollTo(0, scrollTo);
        main.focus({ preventScroll: true });
      }
    } catch (_) {
      if (mine === navigation) location.assign(url.href);
    }
  }

  // Only when the docked player is on the page is there anything to keep alive.
  if (playerBox && main) {
    history.replaceState({ ...(history.state || {}), callvault: true }, "");
    // Scroll positions are put back by navigate(), once the page they belong to is in.
    history.scrollRestoration = "manual";

    document.addEventListener("click", (event) => {
      if (event.defaultPrevented || event.button !== 0) return;
      if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      const link = event.target instanceof Element ? event.target.closest("a[href]") : null;
      if (!link || link.hasAttribute("download") || "full" in link.dataset) return;
      if (link.target && link.target !== "_self") return;
      const url = new URL(link.href, location.href);
      if (!navigable(url)) return;
      if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
      event.preventDefault();
      navigate(url);
    });

    document.addEventListener("submit", async (event) => {
      const form = event.target;
      if (!(form instanceof HTMLFormElement) || event.defaultPrevented) return;
      if (form.matches("[data-save-filter]")) {
        event.preventDefault();
        const name = new FormData(form).get("name");
        try {
          await api("POST", "/api/v1/filters", { name, query: form.dataset.query || "" });
          await navigate(new URL(location.href), { push: false, quiet: true });
        } catch (error) {
          announce(document, `Could not save the filter: ${error.message}`, true);
        }
        return;
      }
      const submitter = event.submitter;
      const method = ((submitter && submitter.getAttribute("formmethod")) || form.getAttribute("method") || "get").toLowerCase();
      // Attributes, not properties: a field named "action" or "target" shadows those.
      const target = form.getAttribute("target");
      if (method !== "get" || "full" in form.dataset || (target && target !== "_self")) return;
      const action = (submitter && submitter.getAttribute("formaction")) || form.getAttribute("action") || location.pathname;
      const url = new URL(action, location.href);
      if (!navigable(url)) return;
      event.preventDefault();
      // Empty fields stay out of the address: the URL is the quick filter people share.
      const query = new URLSearchParams();
      for (const [key, value] of new FormData(form, submitter)) {
        if (typeof value === "string" && value !== "") query.append(key, value);
      }
      url.search = query.toString();
      url.hash = "";
      navigate(url);
    });

    window.addEventListener("popstate", (event) => {
      // A change of the #fragment alone is the browser's business.
      if (location.pathname + location.search === loadedAt) return;
      navigate(new URL(location.href), {
        push: false,
        scrollTo: (event.state && event.state.scrollY) || 0,
      });
    });
  }

  // ---------------------------------------------------------------- each page

  // Pages listing calls still being recorded refresh themselves (W11, X10), unless the
  // user is busy with a form on it.
  function scheduleLive(root) {
    window.clearTimeout(liveTimer);
    if (!playerBox || !root.querySelector("[data-live]")) return;
    const at = navigation;
    liveTimer = window.setTimeout(() => {
      const busy = document.activeElement && main.contains(document.activeElement) && document.activeElement.matches("input, select, textarea");
      if (at !== navigation || busy) {
        if (at === navigation) scheduleLive(root);
        return;
      }
      navigate(new URL(location.href), { push: false, quiet: true, scrollTo: window.scrollY });
    }, 5000);
  }

  function startPage(root) {
    for (const box of root.querySelectorAll(".waveform[data-recording]")) loadWaveform(box);
    scheduleLive(root);
    refreshPlayer();
    // For page scripts: DOMContentLoaded happens once; this happens on every page.
    document.dispatchEvent(new CustomEvent("callvault:page", { detail: { main: root } }));
  }

  window.callvault = { navigate, playFrom, player: audio };
  markNavigation();
  if (main) startPage(main);
})();
