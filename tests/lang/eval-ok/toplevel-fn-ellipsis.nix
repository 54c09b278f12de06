# auto-called top-level function with ellipsis and @-binding
args@{ replicas ? 3, ... }: { inherit replicas; defaultInArgs = args ? replicas; }
