# fromJSON decodes \u escapes into UTF-8
builtins.fromJSON "[\"\\u00e9\\t\", \"\\u65e5\"]"
