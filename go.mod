module github.com/tether-iot/tether

go 1.26
