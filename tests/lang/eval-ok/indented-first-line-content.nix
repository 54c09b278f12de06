# content on the opening line counts for indentation
''  a
  b
  ''
