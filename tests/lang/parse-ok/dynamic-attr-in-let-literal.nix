# ${"a"} with a plain string literal is allowed in let
let ${"a"} = 1; in a
