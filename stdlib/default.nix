# The pipeline standard library, imported by definitions as `import <std>`.
# Validation is deliberately light: the Rust planner checks types and unknown
# fields with precise source locations, so user fields are passed through as-is.
let
  inherit (builtins) isAttrs isPath isString mapAttrs;

  # The stage each service type lands in unless the service sets `stage`.
  defaultStageOf = {
    database = "0.DEFAULT DATABASE";
    job = "1.DEFAULT JOB";
    container = "2.DEFAULT CONTAINER";
    application = "3.DEFAULT APPLICATION";
  };

  # Fields every normalized service has; user attributes override them.
  serviceDefaults = {
    env = { };
    secrets = { };
    ports = [ ];
    endpoints = [ ];
    replicas = 1;
    dependsOn = [ ];
    command = null;
    args = null;
    resources = null;
    healthcheck = null;
    stopGracePeriod = null;
    volume = null;
    schedule = null;
    image = null;
  };

  # Defaults of a normalized `build`; `context` has none (the planner reports it if missing).
  buildDefaults = {
    dockerfile = "Dockerfile";
    target = null;
    args = { };
    platform = null;
    repository = null;
  };

  # normalizeBuild :: null | path | string | attrs -> null | attrs; a bare path/string is the context.
  # Anything else is passed through untouched for the planner to report.
  normalizeBuild = b:
    if b == null then null
    else if isAttrs b then buildDefaults // b
    else if isPath b || isString b then buildDefaults // { context = b; }
    else b;

  # mkService :: type -> attrs -> service; `defaults // user fields`, with tags and `build` normalized.
  mkService = type: let
    base = serviceDefaults // { stage = defaultStageOf.${type}; };
  in attrs:
    if isAttrs attrs
    then base // attrs // { _kind = "pipeline.service"; inherit type; build = normalizeBuild (attrs.build or null); }
    else attrs;

  # The stages used when an environment does not list its own, in order.
  defaultStages = [ "0.DEFAULT DATABASE" "1.DEFAULT JOB" "2.DEFAULT CONTAINER" "3.DEFAULT APPLICATION" ];

  # Deploy/build concurrency used when an environment does not override it.
  defaultParallelism = { build = 7; deploy = 7; };
in
{
  inherit defaultStages defaultParallelism;

  # database :: attrs -> service; stateful service (default stage "0.DEFAULT DATABASE").
  database = mkService "database";

  # job :: attrs -> service; run-to-completion task, may set `schedule` (default stage "1.DEFAULT JOB").
  job = mkService "job";

  # container :: attrs -> service; plain long-running container (default stage "2.DEFAULT CONTAINER").
  container = mkService "container";

  # application :: attrs -> service; the project's own long-running service (default stage "3.DEFAULT APPLICATION").
  application = mkService "application";

  # secret :: string -> secret; a reference resolved at deploy time, never a value.
  secret = name: { _kind = "pipeline.secret"; inherit name; };

  # docker :: attrs -> target; deploy to the local Docker engine. Extra attributes pass through.
  docker = args: { _kind = "pipeline.target"; type = "docker"; } // args;

  # kubernetes :: { namespace; context ? null; ... } -> target; deploy to a Kubernetes namespace.
  kubernetes = { namespace, context ? null, ... }@args:
    { _kind = "pipeline.target"; type = "kubernetes"; inherit namespace context; } // args;

  # environment :: { project; name; registry; target; services; parallelism ? defaultParallelism;
  #                  stages ? defaultStages; ... } -> environment. The user's attributes are kept as written
  # (with their source positions), so the planner reports mistakes in them at the user's own lines; it also
  # fills a partial `parallelism` and names each service after its attribute.
  environment = { project, name, registry, target, services, ... }@args:
    { stages = defaultStages; parallelism = defaultParallelism; } // args // { _kind = "pipeline.environment"; };

  # lib :: attrs; small pure helpers (optional, optionalAttrs, mapAttrsToList, filterAttrs, genAttrs, recursiveUpdate, range, ...).
  lib = import ./lib.nix;
}
