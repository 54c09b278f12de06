# single quotes and double quotes inside indented strings
''
  it's "quoted" 'x'
''
