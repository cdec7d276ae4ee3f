#!/bin/bash
# The container's HEALTHCHECK: GET /-/healthy on the port the proxy listens on
# ($WECOM_PROXY_PORT), with bash alone: no Node process every 15 s, no curl in the image.
set -eu
exec 3<>"/dev/tcp/127.0.0.1/${WECOM_PROXY_PORT:-8080}"
printf 'GET /-/healthy HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
read -r -t 3 _ status _ <&3
[ "$status" = 200 ]
