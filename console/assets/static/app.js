// tally console: follows the live feed (/v1/stream, Server-Sent Events) and
// updates the page in place. No framework; text only (never innerHTML).
"use strict";
(function () {
  if (!document.body || !document.body.dataset.live) return;
  const $ = (id) => document.getElementById(id);
  const set = (id, v) => { const e = $(id); if (e) e.textContent = v; };
  const es = new EventSource("/v1/stream");
  es.onopen = () => set("live", "live");
  es.onerror = () => set("live", "reconnecting");
  es.addEventListener("stats", (ev) => {
    const s = JSON.parse(ev.data);
    set("tps", s.tx_per_s.toFixed(1));
    set("entries", String(s.settle.entries));
    set("lag", String(s.lag));
    set("exceptions", String(s.settle.exceptions));
  });
  es.addEventListener("balances", (ev) => {
    const body = document.querySelector("#balances tbody");
    if (!body) return;
    for (const b of JSON.parse(ev.data)) {
      const key = b.party + "|" + b.currency;
      let row = Array.from(body.rows).find((r) => r.dataset.key === key);
      if (!row) {
        row = body.insertRow();
        row.dataset.key = key;
        for (let i = 0; i < 3; i++) row.insertCell();
        row.cells[2].className = "num";
        row.cells[0].textContent = b.party;
        row.cells[1].textContent = b.currency;
      }
      if (row.cells[2].textContent !== b.amount) {
        row.cells[2].textContent = b.amount;
        row.classList.add("flash");
        setTimeout(() => row.classList.remove("flash"), 600);
      }
    }
  });
  es.addEventListener("entries", (ev) => {
    const body = document.querySelector("#activity tbody");
    if (!body) return;
    for (const e of JSON.parse(ev.data)) {
      const row = body.insertRow(0);
      const shares = e.shares.map((s) => s.party + " " + s.amount).join("; ");
      for (const v of [e.settled_at, e.provider, e.id, e.type, e.amount + " " + e.currency, shares]) {
        row.insertCell().textContent = v;
      }
      row.cells[4].className = "num";
    }
    while (body.rows.length > 50) body.deleteRow(body.rows.length - 1);
  });
})();
