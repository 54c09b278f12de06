# multi-byte characters in strings and quoted attribute names, next to escapes and interpolations
let
  s = "日本";
  set = { "é" = 1; "ü b" = 2; "🙂" = { "ß" = 3; }; x."ñ" = 4; ${"dyn-é"} = 5; };
in
{
  plain = "héllo wörld 🙂";
  interp = "${s}é${s}\n\t${"ü"}\"\$${s}\\";
  indented = ''
    日本 ''${s} ''' ü''\n${s}é
      ß''\t🙂
  '';
  length = builtins.stringLength "é🙂";
  names = builtins.attrNames set;
  select = [ set."é" set."ü b" set."🙂"."ß" set.x."ñ" set.${"dyn-é"} (set ? "é") (set ? "e") ];
  json = builtins.toJSON { "é" = "ü\n"; };
  sorted = builtins.sort builtins.lessThan [ "é" "z" "e" "É" "🙂" ];
  replaced = builtins.replaceStrings [ "é" "🙂" ] [ "e" ":)" ] "héllo 🙂";
  upper = builtins.substring 1 2 "aéb";
}
