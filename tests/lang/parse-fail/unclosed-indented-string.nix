# unclosed indented string
''
  abc
