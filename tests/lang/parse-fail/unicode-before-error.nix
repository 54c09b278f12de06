# the caret lands on the error, not inside the multi-byte characters before it
{ "日本語" = "🙂🙂"; ü = "ß" + ; }
