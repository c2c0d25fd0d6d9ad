# escape=`
# Windows images: no POSIX shell rules, C:\ paths are absolute.
FROM mcr.microsoft.com/windows/servercore:ltsc2022 AS build
SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop';"]
WORKDIR C:\src
RUN Invoke-WebRequest https://example.com/x.zip -OutFile x.zip | Out-Null; cd C:\x
RUN Expand-Archive x.zip -DestinationPath C:\app
COPY app.ps1 C:/app/
CMD powershell -File C:\app\app.ps1

FROM mcr.microsoft.com/windows/nanoserver:ltsc2022
WORKDIR C:/app
COPY --from=build C:\app C:\app\
ENTRYPOINT C:\app\app.exe
