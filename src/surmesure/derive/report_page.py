"""The HTML page of the derive report (a Jinja template, autoescaped; figures are SVG)."""

# (figure title, what it shows), in the order of the page
SECTIONS = (
    (
        "RFM grid",
        "People and net revenue by recency score (rows) and frequency-and-money score (columns).",
    ),
    (
        "Customer lifetime value",
        "Expected value per buyer over the horizon (BG/NBD and Gamma-Gamma).",
    ),
    ("Cohort retention", "Share of each first-purchase cohort buying again N months later."),
    (
        "NPS by month",
        "Net Promoter Score of each month's answers; bars count the answers, and a point is "
        "the smaller for resting on fewer answers.",
    ),
    (
        "Channel appetence by segment",
        "Mean smoothed response rate per RFM segment and channel, with the number of people "
        "behind each cell; one colour scale from 0 for every cell.",
    ),
    (
        "Engagement by segment",
        "Engagement score (0-100: e-mail opens and clicks, recency of interaction, purchase "
        "frequency, regularity and category breadth, each ranked within the base) per RFM "
        "segment: median, quartiles and whiskers to 1.5 times the interquartile range.",
    ),
)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Customer base at {{ as_of }}</title>
<style>
  body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1a202c;
         max-width: 1150px; margin: 2rem auto; padding: 0 1rem; background: #f7fafc; }
  h1 { margin-bottom: .2rem; }
  .sub { color: #718096; margin-top: 0; }
  .cards { display: grid; grid-template-columns: repeat(5, 1fr); gap: .8rem; margin: 1.5rem 0; }
  .card { background: white; border-radius: 8px; padding: .8rem 1rem;
          box-shadow: 0 1px 3px rgba(0,0,0,.08); }
  .card .v { font-size: 1.5rem; font-weight: 600; }
  .card .k { color: #718096; font-size: .85rem; }
  section { background: white; border-radius: 8px; padding: 1rem 1.2rem; margin: 1rem 0;
            box-shadow: 0 1px 3px rgba(0,0,0,.08); }
  section svg { max-width: 100%; height: auto; }
  table { border-collapse: collapse; }
  td, th { padding: .25rem .8rem; border-bottom: 1px solid #e2e8f0; text-align: right; }
  td:first-child, th:first-child { text-align: left; }
  .missing { color: #718096; font-style: italic; }
</style>
</head>
<body>
<h1>Customer base at {{ as_of }}</h1>
<p class="sub">{{ "{:,}".format(people) }} identified people in the latest derive run;
generated {{ generated_at }}.</p>
<div class="cards">
{% for label, value in headline %}
  <div class="card"><div class="v">{{ value }}</div><div class="k">{{ label }}</div></div>
{% endfor %}
</div>
{% for title, caption in sections %}
<section>
  <h2>{{ title }}</h2>
  <p class="sub">{{ caption }}</p>
  {% if title in figures %}{{ figures[title] }}{% else %}
  <p class="missing">No data yet: {% if title == "NPS by month" %}no survey answer{% elif
  title == "Cohort retention" %}no purchase{% else %}run <code>surmesure derive</code>{% endif
  %}.</p>{% endif %}
</section>
{% endfor %}
{% if segments %}
<section>
  <h2>Satisfaction by RFM segment (last {{ window_days }} days)</h2>
  <p class="sub">NPS (-100 to 100, with its 95% margin), CSAT (share of 4-5) and CES (mean,
  1-7: the lower, the less effort), each beside the number of answers behind it. Segments in
  italics rest on fewer than {{ few }} answers: their figures move by tens of points from one
  answer to the next, so do not compare them.</p>
  <table>
    <tr><th>segment</th><th>NPS</th><th>answers</th><th>CSAT</th><th>answers</th>
        <th>CES</th><th>answers</th></tr>
    {% for g in segments %}
    <tr{% if g.small %} class="missing"{% endif %}><td>{{ g.segment }}{% if g.small
        %} (few answers){% endif %}</td>
        <td>{% if g.nps is none %}n/a{% else %}{{ "%.0f"|format(g.nps) }}{% if g.nps_margin
            is not none %} &plusmn; {{ "%.0f"|format(g.nps_margin) }}{% endif %}{% endif %}</td>
        <td>{{ "{:,}".format(g.nps_answers) }}</td>
        <td>{% if g.csat is none %}n/a{% else %}{{ "%.0f%%"|format(100 * g.csat) }}{% endif %}</td>
        <td>{{ "{:,}".format(g.csat_answers) }}</td>
        <td>{% if g.ces is none %}n/a{% else %}{{ "%.2f"|format(g.ces) }}{% endif %}</td>
        <td>{{ "{:,}".format(g.ces_answers) }}</td></tr>
    {% endfor %}
  </table>
</section>
{% endif %}
</body>
</html>
"""
