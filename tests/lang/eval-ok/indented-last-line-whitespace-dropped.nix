# trailing whitespace-only line before closing quotes is dropped
''
  a
  b
    ''
