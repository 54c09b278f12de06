# auto-called top-level function with defaults referring to each other
{ name ? "svc", port ? 8000 + 80, url ? "http://${name}:${toString port}" }: { inherit name port url; }
