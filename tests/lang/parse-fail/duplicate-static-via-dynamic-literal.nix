# ${"a"} with a plain literal is static, so this duplicate is a parse error
{ ${"a"} = 1; a = 2; }
