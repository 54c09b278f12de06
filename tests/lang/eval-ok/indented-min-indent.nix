# the minimum indentation over non-empty lines is removed
''
    a
  b
      c
''
