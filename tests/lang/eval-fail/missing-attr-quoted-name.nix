# a missing name that is not an identifier is shown quoted and escaped
{ "a b" = 1; }.${"a\nb"}
