module example.com/report

go 1.26.0
