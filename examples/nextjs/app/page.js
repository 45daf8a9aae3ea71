export default function Home() {
  return <p>autopay-auth on Next.js: GET /api/token (Node.js), /api/edge-token (edge), /autopay/… (middleware)</p>;
}
