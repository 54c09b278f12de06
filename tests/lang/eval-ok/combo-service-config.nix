# a realistic config combining many features
let
  defaults = { replicas = 1; port = 80; env = { LOG = "info"; }; };
  mk = name: overrides: defaults // overrides // { inherit name; env = defaults.env // (overrides.env or { }); };
  services = map (n: mk n (if n == "db" then { port = 5432; env.LOG = "warn"; } else { })) [ "web" "db" ];
in builtins.listToAttrs (map (s: { name = s.name; value = s; }) services)
