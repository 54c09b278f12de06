# fromJSON of objects, arrays, numbers and unicode escapes
builtins.fromJSON "{\"a\": [1, 2.5, true, null, \"x\\u0041\"], \"b\": {}, \"c\": 1e3, \"d\": -0.5, \"e\": \"\\n\"}"
