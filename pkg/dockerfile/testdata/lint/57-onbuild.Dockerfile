# ONBUILD instructions are checked as they will run in the child image.
FROM debian:12
ONBUILD RUN cd /src && apt-get install -y curl
ONBUILD COPY . /src/
ONBUILD ADD app.jar /app/
ONBUILD CMD java -jar /app/app.jar
HEALTHCHECK CMD curl -f http://localhost/ || exit 1
USER 1000
CMD ["bash"]
