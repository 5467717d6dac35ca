# Shared by the scripts that start local services (source it).

# free_port FROM: a port nobody listens on, from FROM up, in a range unlikely
# to be taken.
free_port() {
  local port
  for port in $(seq "$1" $(($1 + 200))); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}
