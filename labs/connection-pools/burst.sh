#!/bin/sh
# burst.sh N URL [curl options]: send N requests at once, each on its own client connection
# (N curl processes), and print how many answers came back with each status code.
n=$1
url=$2
shift 2
for i in $(seq "$n"); do
  curl -s -o /dev/null -w '%{http_code}\n' "$@" "$url" &
done | sort | uniq -c
