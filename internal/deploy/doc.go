// Package deploy holds the tests of the deployment files at the repository
// root: Dockerfile, .dockerignore, docker-compose.yml, .env.example and
// docs/deploy.md. They load the compose file the way docker compose does
// (compose-go) and check what matters for running Prescripto, so the files
// cannot drift from the binary's configuration. See docs/deploy.md.
package deploy
