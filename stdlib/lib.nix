# std.lib: small, pure helpers users expect (a tiny subset of nixpkgs' lib).
# Only the builtins the pipeline evaluator implements are used.
let
  inherit (builtins) attrNames concatMap concatStringsSep genList isAttrs listToAttrs map mapAttrs;
in
rec {
  # optional :: bool -> a -> [a]; `[ x ]` when cond holds, otherwise `[ ]`.
  optional = cond: x: if cond then [ x ] else [ ];

  # optionals :: bool -> [a] -> [a]; `xs` when cond holds, otherwise `[ ]`.
  optionals = cond: xs: if cond then xs else [ ];

  # optionalAttrs :: bool -> attrs -> attrs; `as` when cond holds, otherwise `{ }`.
  optionalAttrs = cond: as: if cond then as else { };

  # nameValuePair :: string -> a -> { name; value; }; the element type listToAttrs expects.
  nameValuePair = name: value: { inherit name value; };

  # mapAttrsToList :: (name -> value -> b) -> attrs -> [b]; in attribute-name order.
  mapAttrsToList = f: as: map (n: f n as.${n}) (attrNames as);

  # mapAttrs' :: (name -> value -> { name; value; }) -> attrs -> attrs; renames and maps.
  mapAttrs' = f: as: listToAttrs (map (n: f n as.${n}) (attrNames as));

  # filterAttrs :: (name -> value -> bool) -> attrs -> attrs; keeps the pairs the predicate accepts.
  filterAttrs = pred: as:
    listToAttrs (concatMap (n: let v = as.${n}; in if pred n v then [ { name = n; value = v; } ] else [ ]) (attrNames as));

  # genAttrs :: [string] -> (name -> value) -> attrs; one attribute per name.
  genAttrs = names: f: listToAttrs (map (n: { name = n; value = f n; }) names);

  # recursiveUpdate :: attrs -> attrs -> attrs; like `//` but merges nested attrsets (rhs wins on leaves).
  recursiveUpdate = lhs: rhs:
    lhs // mapAttrs (n: v: if isAttrs v && lhs ? ${n} && isAttrs lhs.${n} then recursiveUpdate lhs.${n} v else v) rhs;

  # range :: int -> int -> [int]; the integers from first to last inclusive (empty if first > last).
  range = first: last: if first > last then [ ] else genList (i: first + i) (last - first + 1);

  # concatMapStringsSep :: string -> (a -> string) -> [a] -> string; map then join with sep.
  concatMapStringsSep = sep: f: xs: concatStringsSep sep (map f xs);
}
