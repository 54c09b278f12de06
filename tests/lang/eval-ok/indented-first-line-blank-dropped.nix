# a whitespace-only first line is dropped
''   
  x
  y''
