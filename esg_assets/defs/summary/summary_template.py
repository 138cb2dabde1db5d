"""The Jinja template of the HTML summary: one self-contained page, inline CSS, images given by the caller."""

# Kept in a module rather than a .html file so that it ships in the package without package-data settings.
# Rendered with autoescaping on: every value is escaped unless the template says otherwise, and it never does.
# A line starting with ``{#- #}`` continues the line above: the empty comment strips the line break, so long
# lines are wrapped without changing a byte of the page.
SUMMARY_TEMPLATE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{#- Nothing may load from anywhere: the page works offline and a hostile value cannot fetch or run
    anything. #}
<meta http-equiv="Content-Security-Policy"
{#- #} content="default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'">
<title>ESG ratings summary {{ s.partition_date.isoformat() }}</title>
<style>
  body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #212121;
         margin: 0 auto; max-width: 960px; padding: 16px 24px; line-height: 1.4; }
  h1 { font-size: 1.5em; margin-bottom: 0.2em; }
  h2 { font-size: 1.15em; margin-top: 1.8em; border-bottom: 1px solid #e0e0e0; padding-bottom: 4px; }
  .generated { color: #757575; font-size: 0.85em; margin-top: 0; }
  .cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
  .card { flex: 1 1 150px; border: 1px solid #e0e0e0; border-radius: 6px; padding: 10px 14px; }
  .card .label { color: #616161; font-size: 0.85em; }
  .card .value { font-size: 1.5em; font-weight: 600; }
  .successful { color: #2e7d32; } .partial { color: #b26a00; } .failed { color: #c62828; }
  table { border-collapse: collapse; margin: 8px 0 12px; font-size: 0.92em; }
  th, td { border-bottom: 1px solid #eeeeee; padding: 4px 10px; text-align: left; vertical-align: top; }
  th { background: #fafafa; font-weight: 600; }
  td.number, th.number { text-align: right; font-variant-numeric: tabular-nums; }
  .up { color: #2e7d32; } .down { color: #c62828; }
  img.chart { max-width: 100%; height: auto; display: block; margin: 8px 0; }
  .note { color: #616161; font-size: 0.88em; }
  .ids { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.88em; }
  /* An account id is read and copied whole: never broken over two lines, in a column or in a list. */
  td.ids, .ids .id { white-space: nowrap; }
</style>
</head>
<body>
{%- macro chart(name) %}
{%- if name in charts %}{% set drawn = charts[name] %}
<img class="chart" src="{{ image_source(drawn) }}" alt="{{ drawn.description }}" title="{{ drawn.title }}">
{%- endif %}
{%- endmacro %}
<h1>ESG ratings summary for {{ s.partition_date.isoformat() }}</h1>
<p class="generated">Generated {{ generated_at }} UTC. Account ids and aggregates only: no account names.</p>

<div class="cards">
  <div class="card"><div class="label">Active accounts</div>
    <div class="value">{{ fmt.count(s.total_accounts) }}</div></div>
  <div class="card"><div class="label">Success rate</div>
    <div class="value successful">{{ fmt.percent(s.success_rate) }}</div></div>
  <div class="card"><div class="label">Partial</div>
    <div class="value partial">{{ fmt.count(s.counts["Partial"]) }}</div></div>
  <div class="card"><div class="label">Failed</div>
    <div class="value failed">{{ fmt.count(s.counts["Failed"]) }}</div></div>
</div>

<h2>Processing Status</h2>
<table>
  <tr><th>Processing Status</th><th class="number">Accounts</th><th class="number">Share</th></tr>
  {%- for status, number in s.counts.items() %}
  <tr><td class="{{ status.lower() }}">{{ status }}</td><td class="number">{{ fmt.count(number) }}</td>
      <td class="number">{{ fmt.share(number, s.total_accounts) }}</td></tr>
  {%- endfor %}
</table>
<p class="note">Successful: all six ESG values and the analysis date are present. Partial: some values are
missing and show as N/A in the file. Failed: no rating could be obtained; every ESG field is N/A.</p>
{{ chart("status") }}

<h2>Average scores</h2>
<table>
  <tr><th>Score</th><th class="number">Average</th></tr>
  {%- for pillar, average in s.average_scores.items() %}
  <tr><td>{{ pillar }}</td><td class="number">{{ fmt.score(average) }}</td></tr>
  {%- endfor %}
</table>
<p class="note">Over Successful and Partial accounts that have the score.</p>

<h2>Primary ESG Focus</h2>
<table>
  <tr><th>Primary ESG Focus</th><th class="number">Accounts</th><th class="number">Share</th></tr>
  {%- for pillar, number in s.primary_focus.items() %}
  <tr><td>{{ pillar }}</td><td class="number">{{ fmt.count(number) }}</td>
      <td class="number">{{ fmt.share(number, s.total_accounts) }}</td></tr>
  {%- endfor %}
</table>
{{ chart("primary_focus") }}

<h2>Score distribution</h2>
{{ chart("score_histograms") }}
<table>
  <tr><th>Score</th>
    {%- for pillar in s.score_histograms %}<th class="number">{{ pillar }}</th>{% endfor %}</tr>
  {%- for label in histogram_labels %}{% set bin = loop.index0 %}
  <tr><td>{{ label }}</td>
    {%- for bins in s.score_histograms.values() %}<td class="number">{{ fmt.count(bins[bin]) }}</td>
    {%- endfor %}</tr>
  {%- endfor %}
</table>

<h2>Change since the previous day</h2>
{%- if changes.previous_date is none %}
<p>No earlier day in the warehouse to compare with.</p>
{%- else %}
<p>Compared with {{ changes.previous_date.isoformat() }}.</p>
<table>
  <tr><th></th><th class="number">Previous</th><th class="number">This day</th>
  {#- #}<th class="number">Change</th></tr>
  <tr><td>Active accounts</td><td class="number">{{ fmt.count(changes.previous_total_accounts) }}</td>
      <td class="number">{{ fmt.count(s.total_accounts) }}</td>
      <td class="number">{{ fmt.signed_count(s.total_accounts - changes.previous_total_accounts) }}</td></tr>
  <tr><td>Success rate</td><td class="number">{{ fmt.percent(changes.previous_success_rate) }}</td>
      <td class="number">{{ fmt.percent(s.success_rate) }}</td>
      <td class="number">{{ fmt.points_change(s.success_rate, changes.previous_success_rate) }}</td></tr>
  <tr><td>Average Overall</td><td class="number">{{ fmt.score(changes.previous_average_overall) }}</td>
      <td class="number">{{ fmt.score(s.average_scores["Overall"]) }}</td>
      <td class="number">
        {{- fmt.score_change(s.average_scores["Overall"], changes.previous_average_overall) }}</td></tr>
</table>
<p><strong>{{ fmt.count(changes.new_accounts) }}</strong> new accounts{% if changes.new_account_ids %}:
  <span class="ids">
  {%- for id in changes.new_account_ids %}<span class="id">{{ id }}</span>{{ ", " if not loop.last }}
  {%- endfor %}</span>
  {%- if changes.new_accounts > changes.new_account_ids | length %} and
  {{ fmt.count(changes.new_accounts - changes.new_account_ids | length) }} more{% endif %}{% endif %}.</p>
<p><strong>{{ fmt.count(changes.closed_accounts) }}</strong> closed (no longer active)
  {%- if changes.closed_account_ids %}:
  <span class="ids">
  {%- for id in changes.closed_account_ids %}<span class="id">{{ id }}</span>{{ ", " if not loop.last }}
  {%- endfor %}</span>
  {%- if changes.closed_accounts > changes.closed_account_ids | length %} and
  {{ fmt.count(changes.closed_accounts - changes.closed_account_ids | length) }} more{% endif %}
  {%- endif %}.</p>
{%- if changes.movers %}
<h3>Biggest Overall score movers</h3>
<table>
  <tr><th>Account ID</th><th class="number">Previous</th><th class="number">Now</th>
  {#- #}<th class="number">Change</th></tr>
  {%- for mover in changes.movers %}
  <tr><td class="ids">{{ mover.account_id }}</td><td class="number">{{ fmt.score(mover.previous) }}</td>
      <td class="number">{{ fmt.score(mover.current) }}</td>
      <td class="number {{ 'up' if mover.change > 0 else 'down' }}">
        {{- fmt.signed_score(mover.change) }}</td></tr>
  {%- endfor %}
</table>
{%- else %}
<p>No Overall score changed.</p>
{%- endif %}
{%- endif %}

<h2>Run performance</h2>
{%- if performance is none %}
<p>No ratings fetch recorded for this day.</p>
{%- else %}
<p>{% if performance.this_run %}The ratings fetch of this run.{% else %}The day's last ratings fetch
  (run <span class="ids">{{ performance.fetch.run_id }}</span>); this run did not fetch.{% endif %}</p>
{%- endif %}
{%- if performance is not none or resources is not none %}
<table class="performance">
  {%- if performance is not none %}
  <tr><td>Run time up to this summary</td><td class="number">
      {{- fmt.duration(performance.run_seconds) }}</td></tr>
  <tr><td>Ratings fetch duration</td><td class="number">
      {{- fmt.duration(performance.fetch_seconds) }}</td></tr>
  <tr><td>Accounts fetched / resumed from an earlier run</td>
      <td class="number">{{ fmt.count(performance.fetch.accounts_fetched) }} /
        {{ fmt.count(performance.fetch.accounts_resumed) }}</td></tr>
  <tr><td>API requests</td><td class="number">{{ fmt.count(performance.fetch.api_requests) }}</td></tr>
  <tr><td>Requests per second</td>
      <td class="number">{{ fmt.per_second(performance.fetch.requests_per_second) }}</td></tr>
  <tr><td>Retries</td><td class="number">{{ fmt.count(performance.fetch.retries) }}</td></tr>
  <tr><td>429 Too Many Requests</td><td class="number">{{ fmt.count(performance.fetch.throttled) }}</td></tr>
  <tr><td>304 Not Modified (ratings reused, not downloaded again)</td>
      <td class="number">{{ fmt.count(performance.fetch.not_modified) }}</td></tr>
  {%- endif %}
  {%- if resources is not none %}
  <tr><td>CPU time of the run worker, up to this summary</td>
      <td class="number">{{ fmt.cpu_seconds(resources.cpu_seconds) }}</td></tr>
  <tr><td>Peak memory (RSS) of the run worker</td>
      <td class="number">{{ fmt.size(resources.peak_rss_bytes) }}</td></tr>
  <tr><td>Warehouse size</td><td class="number">{{ fmt.size(resources.warehouse_size_bytes) }}</td></tr>
  <tr><td>Largest DuckDB spill to disk</td><td class="number">{{ fmt.size(resources.spill_bytes) }}</td></tr>
  {%- endif %}
</table>
{%- endif %}

<h2>Checks</h2>
{%- if not checks %}
<p>No check was evaluated before this summary was written.</p>
{%- else %}
<table class="checks">
  <tr><th>Check</th><th>On</th><th>Outcome</th><th>Severity</th><th>Blocking</th><th>Numbers</th></tr>
  {%- for check in checks %}
  <tr><td>{{ check.name }}</td><td>{{ check.asset }}</td>
      <td class="{{ 'successful' if check.passed else 'failed' }}">{{ fmt.check_outcome(check.passed) }}</td>
      <td>{{ check.severity }}</td><td>{{ "yes" if check.blocking else "no" }}</td>
      <td>{% for name, value in check.metadata.items() %}{{ name }}: {{ fmt.check_number(value) }}
        {%- if not loop.last %}; {% endif %}{% endfor %}</td></tr>
  {%- endfor %}
</table>
<p class="note">{{ checks_note }}</p>
{%- endif %}

<h2>Trends</h2>
<table>
  <tr><th>Average per day</th>
    {%- for window in trends.windows %}<th class="number">Last {{ window.days }} days</th>{% endfor %}</tr>
  <tr><td>Days with data</td>
    {%- for window in trends.windows %}<td class="number">{{ window.days_with_data }}</td>{% endfor %}</tr>
  {%- for name, label in trend_metrics %}
  <tr><td>{{ label }}</td>
    {%- for window in trends.windows %}<td class="number">{{ fmt.trend_value(window, name) }}</td>
    {%- endfor %}</tr>
  {%- endfor %}
</table>
{{ chart("trends") }}

<h2>Failed accounts ({{ fmt.count(s.failed_total) }})</h2>
{%- if not s.failed_total %}
<p>None.</p>
{%- else %}
<table>
  <tr><th>Account ID</th><th class="number">HTTP status</th><th>Reason</th></tr>
  {%- for failed in failed_accounts %}
  <tr><td class="ids">{{ failed.account_id }}</td><td class="number">{{ failed.http_status or "" }}</td>
      <td>{{ failed.reason or "" }}</td></tr>
  {%- endfor %}
</table>
{%- if s.failed_total > failed_accounts | length %}
<p class="note">... and {{ fmt.count(s.failed_total - failed_accounts | length) }} more:
{#- #} the summary's JSON file
lists the first {{ fmt.count(s.failed_accounts | length) }}, the warehouse table esg_ratings every one.</p>
{%- endif %}
<p class="note">A Failed account is retried by the next run of the day; see the user guide for what to do.</p>
{%- endif %}
<p class="note">{{ support_text }}{% if support_url.startswith(("https://", "http://")) %}
{#- #}<a href="{{ support_url }}">{{ support_url }}</a>{% else %}{{ support_url }}{% endif %}</p>
</body>
</html>
"""
