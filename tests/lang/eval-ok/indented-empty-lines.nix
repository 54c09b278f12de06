# empty and whitespace-only inner lines do not affect indentation
''
    a

    b
  
    c
''
