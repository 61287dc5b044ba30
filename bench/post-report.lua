-- carol:demo, a member of acme, generates a SOC 2 packet
wrk.method = "POST"
wrk.body = '{"framework":"soc2"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic Y2Fyb2w6ZGVtbw=="
