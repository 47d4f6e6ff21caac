"""The QA report page's stylesheet, inlined into ``report.html`` by
:mod:`coach.qa.report_html` (the page fetches nothing)."""

__all__ = ["CSS"]

CSS = """
:root { --ink:#26303b; --muted:#6b7683; --line:#e3e7ec; --bg:#f5f7fa; --card:#fff;
  --good:#2e9d61; --fair:#d9a21b; --bad:#d64545; --na:#b9c0c8; --accent:#3f6db3; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans",
  sans-serif; color:var(--ink); background:var(--bg); }
header { background:#1f2a37; color:#fff; padding:20px 32px; }
header h1 { margin:0; font-size:22px; font-weight:600; }
header .sub { margin:4px 0 0; color:#c3ccd6; font-size:13px; }
main { max-width:1280px; margin:0 auto; padding:20px 32px 40px; }
h2 { font-size:18px; margin:28px 0 6px; }
h3 { font-size:14px; margin:0 0 8px; }
.muted { color:var(--muted); font-size:12.5px; margin:4px 0; }
.kpis { display:grid; grid-template-columns:repeat(6, 1fr); gap:12px; }
.kpi { background:var(--card); border:1px solid var(--line); border-radius:8px;
  padding:12px 14px; }
.kpi .v { font-size:26px; font-weight:650; }
.kpi .l { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.charts { display:grid; grid-template-columns:repeat(3, 1fr); gap:12px; margin-top:12px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px;
  padding:14px 16px; }
svg.chart { width:100%; max-width:480px; height:auto; display:block; margin:0 auto; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line);
  vertical-align:top; }
th { font-size:12px; color:var(--muted); font-weight:600; }
table.rates { margin-top:8px; font-size:12.5px; }
table.rates td:not(:first-child), table.rates th:not(:first-child) { text-align:right; }
.callcard { background:var(--card); border:1px solid var(--line); border-radius:8px;
  padding:12px 16px; margin:10px 0; }
.callcard .head { display:flex; align-items:center; gap:12px; flex-wrap:wrap; }
.rank { color:var(--muted); font-size:12px; min-width:1.5em; }
.score { display:inline-block; min-width:44px; text-align:center; font-weight:700;
  font-size:18px; color:#fff; border-radius:6px; padding:4px 6px; }
.score.bad { background:var(--bad); } .score.fair { background:var(--fair); }
.score.good { background:var(--good); } .score.none { background:var(--na); }
.title { flex:1 1 220px; min-width:0; }
.call { font-weight:600; font-size:15px; color:var(--ink); word-break:break-all; }
a.call, a.replay, a.at { color:var(--accent); text-decoration:none; }
a.call:hover, a.replay:hover, a.at:hover { text-decoration:underline; }
.meta { color:var(--muted); font-size:12px; }
.pills { display:flex; gap:4px; flex-wrap:wrap; }
.pill { display:inline-block; font-size:11.5px; padding:2px 7px; border-radius:10px;
  color:#fff; white-space:nowrap; }
.pill.met { background:var(--good); } .pill.missed { background:var(--fair); }
.pill.violated { background:var(--bad); } .pill.na { background:var(--na); }
.replay { font-size:13px; white-space:nowrap; }
.chips { margin:6px 0 0 60px; }
.chip { display:inline-block; font-size:11.5px; padding:1px 7px; margin-right:4px;
  border-radius:4px; background:#fdecec; color:#a83232; border:1px solid #f3c7c7; }
.chip.plain { background:#f0f3f6; color:var(--muted); border-color:var(--line); }
ul.why { margin:8px 0 4px 60px; padding:0; list-style:none; }
ul.why li { margin:3px 0; display:grid; grid-template-columns:150px 1fr; gap:8px; }
ul.why li.ok { display:block; }
.step { color:var(--muted); font-size:12.5px; padding-top:1px; }
.at { font-variant-numeric:tabular-nums; font-size:12.5px; color:var(--muted); }
.cue { font-weight:600; }
q { font-style:italic; }
mark { background:#fff0b3; color:inherit; font-weight:600; padding:0 1px; border-radius:2px; }
li.ok { color:var(--good); }
.tick { color:var(--good); font-weight:700; }
.bands { display:flex; gap:8px; margin-top:8px; }
.band { flex:1; border-radius:6px; padding:6px 8px; font-size:12.5px; }
.band b { font-size:18px; display:block; }
.band.bad { background:#fdecec; color:#a83232; } .band.fair { background:#fdf3dc; color:#8a6100; }
.band.good { background:#e6f4ec; color:#1f6e43; }
q::before { content:"“"; } q::after { content:"”"; }
.who { font-size:11px; color:var(--muted); border:1px solid var(--line); border-radius:3px;
  padding:0 4px; }
.detail { color:var(--muted); }
details { margin:6px 0 0 60px; }
summary { cursor:pointer; color:var(--accent); font-size:13px; }
.steps { display:grid; grid-template-columns:repeat(auto-fill, minmax(300px, 1fr)); gap:8px;
  margin-top:6px; }
.stepbox { border:1px solid var(--line); border-radius:6px; padding:8px 10px; }
.stepbox h4 { margin:0; font-size:13px; }
.stepbox .note { margin:2px 0; color:var(--muted); font-size:12.5px; }
.stepbox ul { margin:4px 0 0; padding-left:16px; font-size:13px; }
.loss { color:var(--bad); font-weight:600; font-size:12px; }
.transcript table { font-size:13px; margin-top:6px; }
.transcript tr.hit { background:#fff6d9; }
.transcript td.sp { color:var(--muted); width:80px; }
.transcript td.sp.customer { color:#8a5a00; }
table.compact, table.skipped { background:var(--card); border:1px solid var(--line); }
table.compact .call { white-space:nowrap; word-break:normal; font-size:14px; }
table.compact .score { font-size:14px; min-width:36px; padding:2px 4px; }
table.compact td.pills { display:table-cell; white-space:nowrap; }
table.compact .pill { font-size:11px; padding:1px 6px; }
td.path { font-family:ui-monospace, "DejaVu Sans Mono", monospace; font-size:12px;
  word-break:break-all; }
footer { margin-top:32px; padding-top:12px; border-top:1px solid var(--line);
  color:var(--muted); }
footer p { max-width:900px; }
@media (max-width: 1000px) { .charts { grid-template-columns:1fr; }
  .kpis { grid-template-columns:repeat(3, 1fr); } }
"""
