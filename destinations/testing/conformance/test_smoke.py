from loadbay.destinations.testing.conformance.helpers import github_events, query, table_columns


def test_github_events_merge_twice(make_pipeline):
    p = make_pipeline()
    events = github_events(p)
    p.run(events, table_name="events", write_disposition="merge", primary_key="id").raise_on_failed_jobs()
    p.run(events, table_name="events", write_disposition="merge", primary_key="id").raise_on_failed_jobs()
    assert query(p, "SELECT count(*) FROM events") == [(len({e["id"] for e in events}),)]
    commits = sum(len(e["payload"].get("commits", [])) for e in events)
    assert query(p, "SELECT count(*) FROM events__payload__commits") == [(commits,)]
    assert table_columns(p, "events")["actor__id"] == "bigint"
