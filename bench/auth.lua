-- carol:demo, a member of acme
wrk.headers["Authorization"] = "Basic Y2Fyb2w6ZGVtbw=="
